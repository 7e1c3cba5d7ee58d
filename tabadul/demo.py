"""``tabadul demo``: the exchange core end to end, in one process.

Five agencies get keys and certificates from a fresh root CA; the operator signs a directory
with their services, grants and the registered schemas. Then tax asks the civil registry about
people, customs publishes declarations to tax and treasury, treasury sends an encrypted
suspicious-transaction alert to tax, and forged, replayed and invalid messages are refused.
Every agency logs what it sent, received and rejected in its Merkle log; the logs are
verified and one message is proven with an evidence bundle checked against the CA alone.

Messages are handed from agency to agency in memory: this shows the protocol, not the broker
(the RabbitMQ connectors are a separate part).
"""

from __future__ import annotations

import base64
import json
import shutil
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from exchange import (
    Inspector,
    MemorySeenStore,
    PayloadIssue,
    RejectError,
    build_envelope,
    parse_envelope,
)
from exchange.log import (
    Direction,
    LogEntry,
    MessageLog,
    SQLiteLogStore,
    evidence_bundle,
    verify_evidence,
)
from schemas import SchemaRegistry, default_registry
from tabadul.sandbox import Party, Sandbox

AGENCIES = {
    "civil": "MA/GOV/MOI/CIVIL-REGISTRY",
    "tax": "MA/GOV/MEF/TAX",
    "customs": "MA/GOV/MEF/CUSTOMS",
    "treasury": "MA/GOV/MEF/TREASURY",
    "property": "MA/GOV/MEF/STATE-PROPERTY",
}
LOOKUP = "civil.person-lookup"
CERTIFICATE = "tax.compliance-certificate"
PARCEL = "property.parcel-lookup"
LODGED, CLEARED = "customs.declaration-lodged", "customs.declaration-cleared"
ALERT = "treasury.suspicious-transaction-alert"


def _validator(registry: SchemaRegistry) -> Callable[[str, str, Any], list[PayloadIssue]]:
    def validate(message_type: str, version: str, payload: Any) -> list[PayloadIssue]:
        if message_type not in registry.types():
            return [PayloadIssue("$", f"no schema registered for {message_type}", "type")]
        report = registry.validate(message_type, version, payload)
        return [PayloadIssue(e.path, e.message, e.keyword) for e in report.errors]

    return validate


@dataclass
class Agency:
    """One agency's side: its keys, its log, its receive checks."""

    name: str
    party: Party
    log: MessageLog
    inspector: Inspector
    received: list[Any] = field(default_factory=list)


@dataclass
class Demo:
    sandbox: Sandbox
    registry: SchemaRegistry
    agencies: dict[str, Agency]
    sent: Counter[str] = field(default_factory=Counter)
    rejects: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    plaintext_on_wire: bool | None = None

    def send(
        self, sender: str, receiver: str | None, message_type: str, payload: Any, **kwargs: Any
    ) -> bytes:
        """Build and sign a message from ``sender`` (an event when ``receiver`` is None);
        it is logged as sent."""
        entry = self.registry.latest(message_type)
        recipient = None if receiver is None else self.agencies[receiver].party
        data = build_envelope(
            self.agencies[sender].party.signer,
            message_type=message_type,
            schema_version=entry.version,
            kind=entry.kind.value,
            payload=json.dumps(payload, ensure_ascii=False).encode(),
            classification=entry.classification.value,
            recipient=None if recipient is None else self.sandbox.recipient(recipient),
            **kwargs,
        )
        self.agencies[sender].log.append(_entry("sent", data))
        self.sent[message_type] += 1
        return data

    def reply(self, sender: str, request: bytes, payload: Any) -> bytes:
        """The response to ``request``, bound to it by correlation id and digest."""
        asked = parse_envelope(request)
        receiver = next(
            name for name, a in self.agencies.items() if a.party.subsystem == asked.header.sender
        )
        return self.send(
            sender,
            receiver,
            asked.header.type.removesuffix(".request") + ".response",
            payload,
            correlation_id=asked.header.id,
            in_reply_to=asked.digest,
        )

    def deliver(self, receiver: str, data: bytes) -> Any | None:
        """Run the receive pipeline at ``receiver``; log the outcome; the payload or None."""
        agency = self.agencies[receiver]
        start = time.perf_counter()
        try:
            accepted = agency.inspector.inspect(data)
        except RejectError as exc:
            self.rejects[exc.code] += 1
            agency.log.append(_entry("rejected", data, exc.code))
            return None
        envelope = accepted.envelope
        agency.inspector.seen.add(envelope.header.id, agency.inspector.keep_until(envelope))
        agency.log.append(_entry("received", data))
        self.latencies_ms.append((time.perf_counter() - start) * 1000)
        agency.received.append(accepted.payload)
        return accepted.payload


def _entry(direction: Direction, data: bytes, code: str | None = None) -> LogEntry:
    try:
        header = parse_envelope(data).header
        ident = (header.id, header.type, str(header.sender), str(header.recipient or header.topic))
    except RejectError:
        ident = ("0" * 32, "unknown", "unknown", "unknown")
    return LogEntry(direction, *ident, envelope=data, reject_code=code)


def _setup(folder: Path) -> Demo:
    registry = default_registry()
    sandbox = Sandbox()
    parties = {name: sandbox.add(ident) for name, ident in AGENCIES.items()}
    for entry in registry.entries():
        sandbox.classify(entry.type, entry.classification.value, entry.version, entry.digest)
    sandbox.provide(parties["civil"], f"{LOOKUP}.request", f"{LOOKUP}.response")
    sandbox.provide(parties["tax"], f"{CERTIFICATE}.request", f"{CERTIFICATE}.response")
    sandbox.provide(parties["property"], f"{PARCEL}.request", f"{PARCEL}.response")
    sandbox.grant(parties["tax"], f"{LOOKUP}.request", parties["civil"])
    sandbox.grant(parties["treasury"], f"{CERTIFICATE}.request", parties["tax"])
    sandbox.grant(parties["tax"], f"{PARCEL}.request", parties["property"])
    sandbox.grant(parties["treasury"], ALERT, parties["tax"])
    for topic in (LODGED, CLEARED):
        sandbox.publish(parties["customs"], topic)
        sandbox.subscribe(parties["tax"], topic)
        sandbox.subscribe(parties["treasury"], topic)
    directory_bytes = sandbox.sign()
    (folder / "directory.json").write_bytes(directory_bytes)
    (folder / "ca.pem").write_bytes(sandbox.ca.certificate.public_bytes(Encoding.PEM))
    directory = sandbox.directory()
    validate = _validator(registry)
    agencies = {}
    for name, party in parties.items():
        key, _ = party.keys.signer()
        store = SQLiteLogStore(folder / f"{party.subsystem.slug}.log.sqlite")
        agencies[name] = Agency(
            name,
            party,
            MessageLog(store, log_id=str(party.subsystem), signing_key=key),
            Inspector(
                receiver=party.subsystem,
                directory=directory,
                decryption_keys=party.keys.decryption_keys(),
                validator=validate,
                seen=MemorySeenStore(),
            ),
        )
    return Demo(sandbox, registry, agencies)


def _examples(registry: SchemaRegistry, message_type: str) -> Any:
    return json.loads(json.dumps(registry.latest(message_type).examples[0]))


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _scenario(demo: Demo, requests: int) -> Iterator[str]:
    reg = demo.registry
    person = _examples(reg, f"{LOOKUP}.request")
    for i in range(requests):
        # treasury asks tax for a compliance certificate; tax consults the civil registry
        ask = _examples(reg, f"{CERTIFICATE}.request")
        ask["taxpayer_id"] = f"{10_000_000 + i}"
        request = demo.send("treasury", "tax", f"{CERTIFICATE}.request", ask)
        if demo.deliver("tax", request) is None:
            continue
        lookup = demo.send("tax", "civil", f"{LOOKUP}.request", person)
        demo.deliver("civil", lookup)
        answer = demo.reply("civil", lookup, _examples(reg, f"{LOOKUP}.response"))
        demo.deliver("tax", answer)
        reply = demo.reply("tax", request, _examples(reg, f"{CERTIFICATE}.response"))
        demo.deliver("treasury", reply)
    yield f"{requests} tax-compliance certificates, each consulting the civil registry"

    for topic in (LODGED, CLEARED):
        for _ in range(requests):
            event = demo.send("customs", None, topic, _examples(reg, topic))
            for subscriber in ("tax", "treasury"):
                demo.deliver(subscriber, event)
    yield f"{2 * requests} customs declarations fanned out to tax and treasury"

    alert = demo.send("treasury", "tax", ALERT, _examples(reg, ALERT))
    demo.plaintext_on_wire = any(
        text.encode() in alert for text in _strings(_examples(reg, ALERT)) if len(text) >= 6
    )
    demo.deliver("tax", alert)
    yield "an encrypted suspicious-transaction alert, treasury to tax (no plaintext on the wire)"

    parcel = demo.send("tax", "property", f"{PARCEL}.request", _examples(reg, f"{PARCEL}.request"))
    demo.deliver("property", parcel)

    forged = json.loads(demo.send("tax", "civil", f"{LOOKUP}.request", person))
    forged["payload"] = base64.b64encode(b'{"cin": "X1", "purpose": "fishing"}').decode()
    demo.deliver("civil", json.dumps(forged).encode())
    demo.deliver("tax", alert)  # a replay
    bad = dict(person, cin="not a card number")
    demo.deliver("civil", demo.send("tax", "civil", f"{LOOKUP}.request", bad))
    demo.deliver("civil", demo.send("customs", "civil", f"{LOOKUP}.request", person))
    yield "a tampered, a replayed, an invalid and an unauthorised message, each refused"


def run(
    folder: Path, *, requests: int = 20, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Run the whole demonstration in ``folder`` (emptied first); returns the summary."""
    say = progress or (lambda _text: None)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    demo = _setup(folder)
    say("CA, five agencies, directory signed")
    steps = list(_scenario(demo, requests))
    for step in steps:
        say(step)
    for agency in demo.agencies.values():
        agency.log.flush()
    logs = {}
    for name, agency in demo.agencies.items():
        report = agency.log.verify(agency.log.public_key)
        logs[name] = {"records": report.size, "root": report.root.hex()[:16], "intact": True}
    say("every agency's Merkle log verified")
    tax = demo.agencies["tax"]
    alert_id = next(
        record.message_id
        for chunk in tax.log.store.scan()
        for stored in chunk
        if (record := stored.record).message_type == ALERT and record.direction == "received"
    )
    proof = tax.log.inclusion_proof(alert_id, direction="received")
    treasury_cert = demo.agencies["treasury"].party.keys.signer()[1]
    bundle = evidence_bundle(proof, tax.party.keys.signer()[1], treasury_cert)
    (folder / "evidence-alert.json").write_bytes(bundle)
    evidence = verify_evidence(bundle, demo.sandbox.ca.certificate)
    say("evidence bundle for the alert verified with the CA certificate alone")
    for agency in demo.agencies.values():
        agency.log.close()
    latencies = sorted(demo.latencies_ms)
    return {
        "steps": steps,
        "messages_sent": sum(demo.sent.values()),
        "sent_by_type": dict(sorted(demo.sent.items())),
        "accepted": len(latencies),
        "rejects_by_code": dict(sorted(demo.rejects.items())),
        "alert_plaintext_on_wire": demo.plaintext_on_wire,
        "receive_ms_p50": round(statistics.median(latencies), 3),
        "receive_ms_p99": round(latencies[int(len(latencies) * 0.99) - 1], 3),
        "logs": logs,
        "evidence": evidence.as_dict(),
        "files": sorted(p.name for p in folder.iterdir()),
        "folder": str(folder),
        "not_in_this_demo": "RabbitMQ connectors, governance, open data on CKAN",
    }
