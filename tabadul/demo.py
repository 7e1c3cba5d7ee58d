"""``tabadul demo``: five ministry connectors on the local RabbitMQ, then governed open data
on the local CKAN, end to end.

A fresh root CA certifies the five agencies; the operator signs a directory built from the
agencies' declared services, subscriptions and calls (plus two grants of the operator's:
treasury may ask tax for compliance certificates, tax may look up state property). The five
connectors start with their real handlers and sample data; then:

- treasury asks tax for tax-compliance certificates, and tax consults the civil registry
  for each taxpayer who is a person;
- customs publishes declarations lodged and cleared, which tax and treasury follow; its risk
  service scores each declaration and sends customs the lane and the reasons, encrypted;
  customs inspects, sends the results back, and the service retrains from them
  (:mod:`tabadul._demo_risk`);
- treasury screens its payments, by two rules and a learned anomaly score with its reasons,
  and sends suspicious-transaction alerts to tax, encrypted end to end (RESTRICTED); tax
  sends back its verdicts, which the score learns from (:mod:`tabadul._demo_payments`);
- tax looks up state-property parcels;
- a tampered message, a replay and an unauthorised request are injected straight into the
  civil registry's queue, and an invalid request is stopped at its source.

Then every connector's Merkle log is verified, and one alert is proven with an evidence
bundle checked against the CA certificate alone. Last, two open datasets are classified,
screened, approved and published to CKAN, and one is pulled back and verified
(:mod:`tabadul._demo_opendata`).
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from connectors import (
    AccessLog,
    Connector,
    Handler,
    LocalBus,
    OutboundMessage,
    PikaTransport,
    RemoteError,
    RuntimeSettings,
    SendRefused,
    SubjectKey,
    Witnessing,
    direct_key,
    witness_each_other,
)
from connectors.ministries import AGENCIES, customs, tax, treasury
from exchange import LegalBasis, Recipient, build_envelope
from exchange.log import (
    Cosignature,
    MessageLog,
    SQLiteLogStore,
    evidence_bundle,
    verify_evidence,
)
from exchange.sandbox import Party, Sandbox
from governance import AuditLog, AuditSigner, GovernanceStore
from schemas import default_registry
from tabadul import _demo_dead_letter as dead_letter_demo
from tabadul import _demo_opendata as open_data
from tabadul import _demo_payments as payments_demo
from tabadul import _demo_risk as risk_demo
from tabadul._risk_service import TERMS as RISK_TERMS
from tabadul._risk_service import (
    VERDICT_TERMS,
    payment_handlers,
    risk_handlers,
)
from tabadul._witnessing import AuditLogKept, read_cosignatures

CERTIFICATE = "tax.compliance-certificate.request"
LOOKUP = "civil.person-lookup.request"
PARCEL = "property.parcel-lookup.request"
ALERT = "treasury.suspicious-transaction-alert"
REGISTRY = "MA/GOV/DNUM/REGISTRY"  # the operator's subsystem: its key signs the audit log
Progress = Callable[[str], None]
# What each exchange is for, and the law that allows it (illustrative references)
TERMS: dict[str, dict[str, Any]] = {
    LOOKUP: {
        "purpose": "tax-compliance-check",
        "legal_basis": LegalBasis(
            "Checking a taxpayer's civil status before certifying compliance",
            "Code général des impôts, art. 214",
        ),
    },
    CERTIFICATE: {
        "purpose": "public-procurement-payment",
        "legal_basis": LegalBasis(
            "Paying a public contract needs the supplier's tax-compliance certificate",
            "Décret n° 2-22-431 sur les marchés publics, art. 25",
        ),
    },
    ALERT: {
        "purpose": "anti-money-laundering",
        "legal_basis": LegalBasis(
            "Reporting suspicious transactions to the tax administration",
            "Loi n° 43-05 relative à la lutte contre le blanchiment de capitaux",
        ),
    },
    PARCEL: {
        "purpose": "tax-assessment",
        "legal_basis": LegalBasis("Assessing property taxes", "Loi n° 47-06, art. 20"),
    },
    tax.ALERT_VERDICT: VERDICT_TERMS,
}


def _directory(sandbox: Sandbox) -> dict[str, Party]:
    """The agencies and what they may do, from their specs (plus the operator's grants)."""
    registry = default_registry()
    parties = {name: sandbox.add(spec.subsystem) for name, spec in AGENCIES.items()}
    parties["customs-risk"] = sandbox.add(customs.RISK_SUBSYSTEM)
    parties["registry"] = sandbox.add(REGISTRY)
    for entry in registry.entries():
        sandbox.classify(entry.type, entry.classification.value, entry.version, entry.digest)
    for name, spec in AGENCIES.items():
        for request, response in spec.provides.items():
            sandbox.provide(parties[name], request, response)
        for topic in spec.publishes:
            sandbox.publish(parties[name], topic)
        for topic in spec.subscribes:
            sandbox.subscribe(parties[name], topic)
        for message_type, target in spec.calls:
            sandbox.grant(parties[name], message_type, parties[target], **TERMS[message_type])
    sandbox.grant(parties["treasury"], CERTIFICATE, parties["tax"], **TERMS[CERTIFICATE])
    sandbox.grant(parties["tax"], PARCEL, parties["property"], **TERMS[PARCEL])
    risk, desk = parties["customs-risk"], parties["customs"]
    sandbox.subscribe(risk, customs.DECLARATION_LODGED)
    sandbox.grant(risk, customs.RISK_ASSESSED, desk, **RISK_TERMS[customs.RISK_ASSESSED])
    sandbox.grant(desk, customs.INSPECTION_RESULT, risk, **RISK_TERMS[customs.INSPECTION_RESULT])
    witness_each_other(sandbox, list(parties.values()))
    return parties


def _timed(latencies: list[float], call: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    try:
        return call()
    finally:
        latencies.append((time.perf_counter() - started) * 1000)


@dataclass
class _Kept:
    """What the scenario keeps for the summary."""

    latencies: list[float] = field(default_factory=list)  # of requests, in ms
    published: list[str] = field(default_factory=list)  # ids of customs' declarations


def _scenario(
    bus: LocalBus,
    parties: dict[str, Party],
    requests: int,
    kept: _Kept,
    screener: treasury.PaymentScreener,
) -> Iterator[str]:
    """The steps; each yields what it did, and keeps request latencies and the ids of
    customs' declarations in ``kept``."""
    latencies, published = kept.latencies, kept.published
    c = bus.connectors
    registry = default_registry()
    answers: Counter[str] = Counter()
    taxpayers = tax.taxpayer_registry().ids()[:requests]
    tax_desk = parties["tax"].subsystem
    for taxpayer_id in taxpayers:
        ask = dict(registry.latest(CERTIFICATE).examples[0], taxpayer_id=taxpayer_id)
        try:
            answer = _timed(latencies, partial(c["treasury"].request, CERTIFICATE, tax_desk, ask))
            answers[answer["status"]] += 1
        except RemoteError as refusal:
            answers[f"refused ({refusal.remote_code})"] += 1
    yield (
        f"{len(taxpayers)} tax-compliance certificates asked by treasury, tax consulting the "
        f"civil registry: {dict(answers)}"
    )

    declarations = list(customs.declarations())
    for lodged, cleared in declarations:
        published.append(c["customs"].publish(customs.DECLARATION_LODGED, lodged))
        published.append(c["customs"].publish(customs.DECLARATION_CLEARED, cleared))
    yield f"{2 * len(declarations)} customs declarations published to tax and treasury"

    alerts = 0
    context = c["treasury"].context()
    for payment in treasury.payments():
        c["treasury"].publish(treasury.PAYMENT_EXECUTED, payment)
        if screener.screen_and_alert(payment, context) is not None:
            alerts += 1
    yield (
        f"treasury published its payments, screened them by its rules and the learned "
        f"anomaly score, and sent {alerts} encrypted alerts to tax, each with its reasons"
    )

    parcel = registry.latest(PARCEL).examples[0]
    _timed(latencies, partial(c["tax"].request, PARCEL, parties["property"].subsystem, parcel))
    yield "tax looked up a state-property parcel"

    civil_queue = direct_key(parties["civil"].subsystem.slug)
    person = registry.latest(LOOKUP).examples[0]

    def lookup_from(sender: str, purpose: str = TERMS[LOOKUP]["purpose"]) -> bytes:
        """A lookup built by hand, past the sender's own checks."""
        return build_envelope(
            c[sender].signer(),
            message_type=LOOKUP,
            schema_version="1.0.0",
            kind="request",
            payload=json.dumps(person).encode(),
            classification="INTERNAL",
            recipient=Recipient(parties["civil"].subsystem),
            purpose=purpose,
        )

    valid = lookup_from("tax")
    tampered = json.loads(valid)
    tampered["payload"] = base64.b64encode(b'{"cin": "AA000000"}').decode()
    unauthorised = lookup_from("customs")
    other_purpose = lookup_from("tax", purpose="marketing")
    injector = c["customs"].transport
    for body in (json.dumps(tampered).encode(), valid, valid, unauthorised, other_purpose):
        injector.publish([OutboundMessage(civil_queue, body, "injected")])
    stopped = []
    for attempt in (
        partial(c["tax"].request, LOOKUP, parties["civil"].subsystem, {"cin": "not a card"}),
        partial(
            c["treasury"].request,
            CERTIFICATE,
            parties["tax"].subsystem,
            registry.latest(CERTIFICATE).examples[0],
            purpose="marketing",
        ),
    ):
        try:
            attempt()
        except SendRefused as refusal:
            stopped.append(refusal.reason)
    yield (
        "a tampered, a replayed, an unauthorised message and one stating another purpose "
        "than its grant's injected into the civil registry's queue; an invalid request and "
        f"one for another purpose stopped at their source ({', '.join(stopped)})"
    )


def _wait_for_rejects(bus: LocalBus, expected: int, timeout: float = 20.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        rejects: Counter[str] = Counter()
        for connector in bus.connectors.values():
            rejects.update(connector.metrics.totals("rejected"))
        if sum(rejects.values()) >= expected or time.monotonic() > deadline:
            return dict(sorted(rejects.items()))
        time.sleep(0.1)


def _totals(bus: LocalBus, family: str) -> Counter[str]:
    """A metric family's counts, summed over the connectors."""
    found = Counter[str]()
    for connector in bus.connectors.values():
        found.update(connector.metrics.totals(family))
    return found


def _delivery_states(
    connector: Connector, message_ids: list[str], say: Progress, timeout: float = 20.0
) -> dict[str, dict[str, int]]:
    """Per subscriber, how many of ``message_ids`` are in each delivery state, once every
    one is handled or refused (or ``timeout`` seconds have passed)."""
    deadline = time.monotonic() + timeout
    while True:
        counts: dict[str, Counter[str]] = {}
        for message_id in message_ids:
            for state in connector.store.delivery_states(message_id):
                counts.setdefault(state.party, Counter())[state.state] += 1
        pending = sum(c["confirmed"] + c["received"] for c in counts.values())
        if (counts and not pending) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    found = {party: dict(sorted(c.items())) for party, c in sorted(counts.items())}
    say(f"customs' {len(message_ids)} declarations, as the subscribers' receipts tell: {found}")
    return found


def run(  # noqa: PLR0913 - keyword-only settings
    folder: Path,
    *,
    ckan_url: str,
    ckan_token: str,
    requests: int = 12,
    broker_urls: tuple[str, ...] = ("amqp://guest:guest@127.0.0.1:5672/%2F",),
    risk_data: Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the whole demonstration in ``folder`` (emptied first); returns the summary.
    ``risk_data`` is a folder with the customs data set's train.csv and valid.csv (see
    :func:`tabadul._demo_risk.data_files`). Raises :class:`~connectors.TransportError` when
    RabbitMQ is unreachable and :class:`opendata.PortalError` when CKAN is."""
    files = risk_demo.data_files(risk_data)  # a wrong folder is refused before anything goes
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for agency in (tax, treasury, customs):
        agency.reset_state()
    say = progress or (lambda _text: None)
    service, source = risk_demo.prepare(folder / "risk", files, say)
    payment_risk, screener = payments_demo.prepare(folder / "payment-risk", say)
    sandbox = Sandbox("MA")
    parties = _directory(sandbox)
    bus = _bus(folder, sandbox, parties, broker_urls)
    subject_key = SubjectKey(secrets.token_bytes(32))  # the deployment's secret
    tax_handlers, outage = dead_letter_demo.with_outage(AGENCIES["tax"].handlers)
    witnessing = _connectors(
        bus,
        parties,
        subject_key,
        {
            "customs-risk": risk_handlers(service),
            "treasury": payment_handlers(payment_risk),
            "tax": tax_handlers,
        },
    )
    say(
        "CA, five agencies, customs' risk service and the registry, directory signed; queues "
        "declared on RabbitMQ"
    )
    registry_key, registry_cert = parties["registry"].keys.signer()
    signer = AuditSigner(parties["registry"].subsystem, registry_key, registry_cert)
    try:
        for connector in bus.connectors.values():
            connector.start()
        say(f"{len(bus.connectors)} connectors started")
        steps: list[str] = []

        def step(text: str) -> None:
            steps.append(text)
            say(text)

        kept = _Kept()
        for done in _scenario(bus, parties, requests, kept, screener):
            step(done)
        risk = risk_demo.run(bus.connectors["customs"], service, source, say=step)
        risk["payments"] = payments_demo.run(bus.connectors, payment_risk, screener, say=step)
        dead_letter = dead_letter_demo.run(
            bus.connectors["tax"], bus.connectors["customs"], outage, step
        )
        rejects = _wait_for_rejects(bus, 5)
        receipts = _delivery_states(bus.connectors["customs"], kept.published, step)
        sent, received = _totals(bus, "sent"), _totals(bus, "received")
        alerts_received = len(tax.received_alerts())
        latencies = sorted(kept.latencies)
        opened = open_data.run(
            folder,
            ckan_url=ckan_url,
            ckan_token=ckan_token,
            ca_certificate=sandbox.ca.certificate,
            audit_signer=signer,
            progress=say,
        )
        witnessed = _witness(folder, bus, witnessing)
        say(
            f"the governance audit log's head (size {witnessed['audit']['size']}) cosigned by "
            f"{len(witnessed['audit']['witnesses'])} connectors over the bus"
        )
        accesses = _accesses(bus, subject_key, requests)
    finally:
        bus.stop()
        service.close()
        payment_risk.close()
    logs = _verify_logs(folder, parties)
    say("every connector's Merkle log verified, against the others' cosignatures too")
    witnessed["audit"]["verified"] = _verify_audit(folder, parties, sandbox)
    say("the audit log verified with the CA certificate and the witnesses' cosignatures")
    evidence = _prove_an_alert(folder, parties, sandbox)
    say("evidence bundle for an alert verified with the CA certificate alone")
    return {
        "steps": steps,
        "messages_sent": sum(sent.values()),
        "sent_by_type": dict(sorted(sent.items())),
        "accepted": sum(received.values()),
        "rejects_by_code": rejects,
        "receipts": receipts,
        "dead_letter": dead_letter,
        "alerts_received_by_tax": alerts_received,
        "risk": risk,
        "rpc_ms_p50": round(statistics.median(latencies), 2),
        "rpc_ms_max": round(latencies[-1], 2),
        "logs": logs,
        "evidence": evidence,
        "witnessed": witnessed,
        "access_log": accesses,
        "open_data": opened,
        "files": sorted(p.name for p in folder.iterdir()),
        "folder": str(folder),
    }


def _bus(
    folder: Path, sandbox: Sandbox, parties: dict[str, Party], broker_urls: tuple[str, ...]
) -> LocalBus:
    """The connectors' bus on RabbitMQ, the directory signed and the CA certificate written,
    the parties' queues emptied of a previous run's messages."""
    bus = LocalBus(
        sandbox,
        folder,
        lambda: PikaTransport(broker_urls, name="tabadul-demo"),
        settings=RuntimeSettings(directory_poll=1.0, ttl=timedelta(minutes=5)),
    )
    (folder / "directory.json").write_bytes(bus.publish_directory())
    (folder / "ca.pem").write_bytes(sandbox.ca.certificate.public_bytes(Encoding.PEM))
    cleaner = PikaTransport(broker_urls, name="tabadul-demo-setup")
    try:
        for party in parties.values():
            cleaner.remove(party.subsystem.slug)  # a previous run's messages are not ours
    finally:
        cleaner.close()
    return bus


def _log(folder: Path, party: Party) -> MessageLog:
    """A connector's log, opened read-only in spirit: no key, so nothing new is signed."""
    store = SQLiteLogStore(folder / f"{party.subsystem.slug}.log.sqlite", create=False)
    return MessageLog(store, log_id=str(party.subsystem))


def _connectors(
    bus: LocalBus,
    parties: dict[str, Party],
    subject_key: SubjectKey,
    composed: dict[str, dict[str, Handler]],
) -> dict[str, Witnessing]:
    """The agencies' connectors with their handlers (those of ``composed`` for the parties
    it names, else their spec's), access logs for those holding personal data, the risk
    service's and the registry's, all witnessing each other."""
    witnessing = {}
    for name, party in parties.items():
        spec = AGENCIES.get(name)
        access_log = AccessLog(subject_key, spec.subjects) if spec and spec.subjects else None
        handlers = composed.get(name) or (spec.handlers if spec else {})
        connector = bus.connector(name, party, handlers, access_log=access_log)
        witnessing[name] = Witnessing(connector).install()
    return witnessing


def _witness(folder: Path, bus: LocalBus, witnessing: dict[str, Witnessing]) -> dict[str, Any]:
    """Every connector publishes its log's head and the registry the audit log's; wait for
    the cosignatures to come back."""
    store = GovernanceStore.open(str(folder / "governance.sqlite"))
    try:
        audit = AuditLog(store)
        head = audit.signed_head()
        assert head is not None  # the open-data steps signed it
        registry = witnessing["registry"]
        registry.logs[head.log_id] = AuditLogKept(audit, head.log_id)
        for each in witnessing.values():
            each.publish_heads()
        others = len(witnessing) - 1
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done = [c for c in audit.cosignatures() if c.head.size == head.size]
            if len(done) >= others:
                break
            time.sleep(0.1)
        back = {
            name: len(bus.connectors[name].store.cosignatures(bus.connectors[name].log.log_id))
            for name in witnessing
        }
        return {
            "audit": {
                "log": head.log_id,
                "size": head.size,
                "witnesses": sorted(c.witness for c in done),
            },
            "cosignatures_received": back,
        }
    finally:
        store.close()


def _accesses(bus: LocalBus, key: SubjectKey, requests: int) -> dict[str, Any]:
    """What the access logs of tax and civil say about the first taxpayer asked for."""
    first = tax.taxpayer_registry().ids()[0]
    found = bus.connectors["tax"].store.accesses(key.hash(first))
    return {
        "taxpayer": first,
        "consultations": [
            {k: a.as_dict()[k] for k in ("requester", "purpose", "legal_basis", "outcome")}
            for a in found
        ],
        "requests_logged": requests,
    }


def _cosignatures(folder: Path, parties: dict[str, Party]) -> list[Cosignature]:
    """Every cosignature the connectors hold, as their databases keep them."""
    return read_cosignatures(
        [str(folder / f"{party.subsystem.slug}.db") for party in parties.values()], []
    )


def _verify_logs(folder: Path, parties: dict[str, Party]) -> dict[str, Any]:
    out = {}
    cosignatures = _cosignatures(folder, parties)
    for name, party in parties.items():
        log = _log(folder, party)
        report = log.verify(party.keys.signer()[0].public_key(), cosignatures=cosignatures)
        log.close()
        out[name] = {
            "records": report.size,
            "root": report.root.hex()[:16],
            "intact": True,
            "witnessed_size": report.witnessed.witnessed_size if report.witnessed else 0,
        }
    return out


def _verify_audit(folder: Path, parties: dict[str, Party], sandbox: Sandbox) -> bool:
    store = GovernanceStore.open(str(folder / "governance.sqlite"), migrate=False)
    try:
        report = AuditLog(store).verify(
            ca_certificate=sandbox.ca.certificate, cosignatures=_cosignatures(folder, parties)
        )
    finally:
        store.close()
    return report.witnessed is not None and report.witnessed.witnessed_size > 0


def _prove_an_alert(folder: Path, parties: dict[str, Party], sandbox: Sandbox) -> dict[str, Any]:
    log = _log(folder, parties["tax"])
    alert = next(
        stored.record
        for chunk in log.store.scan()
        for stored in chunk
        if stored.record.message_type == ALERT and stored.record.direction == "received"
    )
    head = log.latest_head()
    proof = log.inclusion_proof(alert.message_id, direction="received", head=head)
    log.close()
    bundle = evidence_bundle(
        proof, parties["tax"].keys.signer()[1], parties["treasury"].keys.signer()[1]
    )
    (folder / "evidence-alert.json").write_bytes(bundle)
    return verify_evidence(bundle, sandbox.ca.certificate).as_dict()
