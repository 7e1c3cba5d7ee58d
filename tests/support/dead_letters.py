"""A small bus on the real RabbitMQ with dead letters in it, for the management API's and the
console's dead-letter tests: treasury's handler of declarations fails (until ``fix()``), so
one declaration is a ``handler-failed`` dead letter; a forged, encrypted request to the civil
registry is a ``bad-signature`` one."""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from connectors import OutboundMessage, PikaTransport, RuntimeSettings, direct_key
from exchange import build_envelope
from tests.support import rabbit
from tests.support.federation import (
    LODGED,
    LOOKUP,
    Federation,
    build_federation,
    connector_config,
    example,
)


@dataclass
class DeadLetterBus:
    fed: Federation
    configs: dict[str, Path]  # treasury's and civil's configuration files
    failed_id: str  # the declaration treasury's handler failed
    broken: dict[str, bool]

    def fix(self) -> None:
        self.broken["on"] = False

    def slug(self, name: str) -> str:
        return self.fed.parties[name].subsystem.slug


@contextmanager
def dead_letter_bus(folder: Path, *, wait: bool = True) -> Iterator[DeadLetterBus]:
    """The bus with its two dead letters made; with ``wait``, taken into the connectors'
    databases before it is handed over (otherwise the forged one may still be queued)."""
    instance = rabbit.unique_instance()
    counter = itertools.count()
    settings = RuntimeSettings(
        retry_base=0.05, max_attempts=2, directory_poll=0.2, takeover_after=timedelta(seconds=1)
    )
    fed = build_federation(
        folder,
        lambda: PikaTransport(name=f"{instance}-{next(counter)}"),
        instance=instance,
        settings=settings,
    )
    try:
        handlers = fed["treasury"].handling.handlers
        real, broken = handlers[LODGED], {"on": True}

        def flaky(delivery: Any, ctx: Any) -> Any:
            if broken["on"]:
                raise RuntimeError("the ledger is unavailable")
            return real(delivery, ctx)

        handlers[LODGED] = flaky
        failed_id = fed["customs"].publish(LODGED, example(LODGED))
        forged = json.loads(
            build_envelope(
                fed["tax"].signer(),
                message_type=LOOKUP,
                schema_version="1.0.0",
                kind="request",
                payload=orjson.dumps(example(LOOKUP)),
                classification="RESTRICTED",
                recipient=fed["tax"].outbox.recipient(fed.parties["civil"].subsystem),
            )
        )
        forged["payload"] = base64.b64encode(b"forged" * 8).decode()
        slug = fed.parties["civil"].subsystem.slug
        fed["tax"].transport.publish(
            [OutboundMessage(direct_key(slug), json.dumps(forged).encode(), "forged")]
        )
        if wait:
            _taken_in(fed)
        configs = {name: connector_config(fed, name) for name in ("treasury", "civil")}
        yield DeadLetterBus(fed, configs, failed_id, broken)
    finally:
        fed.bus.stop()
        rabbit.delete_queues(instance)


def _taken_in(fed: Federation) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (
        fed["treasury"].dead_letters.list().letters and fed["civil"].dead_letters.list().letters
    ):
        time.sleep(0.1)
    assert fed["treasury"].dead_letters.list().letters, "no handler-failed dead letter"
    assert fed["civil"].dead_letters.list().letters, "no bad-signature dead letter"
