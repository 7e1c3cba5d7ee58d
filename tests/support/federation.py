"""Four agencies wired as the directory grants them, for connector tests on any transport."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from connectors import Connector, Delivery, LocalBus, Refuse, RuntimeSettings, Transport
from exchange.sandbox import Party, Sandbox
from schemas import default_registry

LOOKUP = "civil.person-lookup.request"
LOOKUP_REPLY = "civil.person-lookup.response"
LODGED = "customs.declaration-lodged"
ALERT = "treasury.suspicious-transaction-alert"
REGISTRY = default_registry()


def strings(value: Any) -> list[str]:
    """Every string inside a JSON value (to look for plaintext on the wire)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return []


def example(message_type: str) -> Any:
    return copy.deepcopy(REGISTRY.latest(message_type).examples[0])


@dataclass
class Recorder:
    """Handlers that record what they were given (thread-safe)."""

    seen: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Event = field(default_factory=threading.Event)

    def record(self, delivery: Delivery) -> None:
        with self.lock:
            self.seen.append(delivery)
        self.arrived.set()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Delivery]:
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.start()
        try:
            while not deadline.is_set():
                with self.lock:
                    if len(self.seen) >= count:
                        return list(self.seen)
                self.arrived.wait(0.02)
                self.arrived.clear()
        finally:
            timer.cancel()
        with self.lock:
            return list(self.seen)


@dataclass
class Federation:
    bus: LocalBus
    parties: dict[str, Party]
    recorders: dict[str, Recorder]

    def __getitem__(self, name: str) -> Connector:
        return self.bus.connectors[name]


def civil_lookup(recorder: Recorder) -> Callable[[Delivery, Any], Any]:
    def handle(delivery: Delivery, _ctx: Any) -> Any:
        recorder.record(delivery)
        if delivery.payload["cin"] == "ZZ999999":
            raise Refuse("no such card number in the register", "not-found")
        reply = example(LOOKUP_REPLY)
        reply["person"]["cin"] = delivery.payload["cin"]
        return reply

    return handle


def build_federation(
    folder: Path,
    transport_factory: Callable[[], Transport],
    *,
    settings: RuntimeSettings | None = None,
    start: bool = True,
    instance: str = "MA",
) -> Federation:
    """Four connectors; a unique ``instance`` keeps their queues apart on a shared broker."""
    sandbox = Sandbox(instance)
    names = {
        "civil": f"{instance}/GOV/MOI/CIVIL-REGISTRY",
        "tax": f"{instance}/GOV/MEF/TAX",
        "customs": f"{instance}/GOV/MEF/CUSTOMS",
        "treasury": f"{instance}/GOV/MEF/TREASURY",
    }
    parties = {name: sandbox.add(ident) for name, ident in names.items()}
    for entry in REGISTRY.entries():
        sandbox.classify(entry.type, entry.classification.value, entry.version, entry.digest)
    sandbox.provide(parties["civil"], LOOKUP, LOOKUP_REPLY)
    sandbox.grant(parties["tax"], LOOKUP, parties["civil"])
    sandbox.publish(parties["customs"], LODGED)
    sandbox.subscribe(parties["tax"], LODGED)
    sandbox.subscribe(parties["treasury"], LODGED)
    sandbox.grant(parties["treasury"], ALERT, parties["tax"])
    bus = LocalBus(
        sandbox,
        folder,
        transport_factory,
        settings=settings
        or RuntimeSettings(
            retry_base=0.05, request_timeout=10.0, directory_poll=0.2, ttl=timedelta(minutes=5)
        ),
    )
    recorders = {name: Recorder() for name in names}

    def record(name: str) -> Callable[[Delivery, Any], None]:
        return lambda delivery, _ctx: recorders[name].record(delivery)

    bus.connector("civil", parties["civil"], {LOOKUP: civil_lookup(recorders["civil"])})
    bus.connector("tax", parties["tax"], {LODGED: record("tax"), ALERT: record("tax")})
    bus.connector("customs", parties["customs"])
    bus.connector("treasury", parties["treasury"], {LODGED: record("treasury")})
    if start:
        for connector in bus.connectors.values():
            connector.start()
    return Federation(bus, parties, recorders)


def connector_config(fed: Federation, name: str) -> Path:
    """A TOML configuration naming the connector ``name``'s keys, database and log (what the
    CLI and the management side read while it runs); its broker is the default one."""
    slug = fed.parties[name].subsystem.slug
    config = fed.bus.folder / f"{name}.toml"
    config.write_text(
        f'subsystem = "{fed.parties[name].subsystem}"\nkeys = "keys"\n'
        'ca_certificate = "ca.pem"\ndirectory = "directory.json"\n'
        f'database = "{fed.bus.folder / (slug + ".db")}"\n'
        f'log = "{fed.bus.folder / (slug + ".log.sqlite")}"\n',
        "utf-8",
    )
    return config
