"""Witnessed heads over the real RabbitMQ: three connectors countersign each other's message
log heads (bus.log-head, consistency proofs on request, cosignatures sent back); a keeper
that shows a rewritten or shortened log, signed with its own key, is refused by every
witness, and verifying its log against the witnesses' cosignatures exposes it."""

from __future__ import annotations

import itertools
import time

import pytest

from connectors import (
    ConnectorStore,
    LocalBus,
    PikaTransport,
    RuntimeSettings,
    Witnessing,
    witness_each_other,
)
from exchange import LogRollback, LogSplitView
from exchange.log import LogEntry, MessageLog, SQLiteLogStore, verify_log
from exchange.sandbox import Sandbox
from tests.support import rabbit
from tests.support.federation import LODGED, REGISTRY, example

NAMES = ("civil", "tax", "customs")


class Bus:
    def __init__(self, folder) -> None:
        self.instance = rabbit.unique_instance()
        counter = itertools.count()
        sandbox = Sandbox(self.instance)
        self.parties = {
            "civil": sandbox.add(f"{self.instance}/GOV/MOI/CIVIL-REGISTRY"),
            "tax": sandbox.add(f"{self.instance}/GOV/MEF/TAX"),
            "customs": sandbox.add(f"{self.instance}/GOV/MEF/CUSTOMS"),
        }
        for entry in REGISTRY.entries():
            sandbox.classify(entry.type, entry.classification.value, entry.version, entry.digest)
        sandbox.publish(self.parties["customs"], LODGED)
        sandbox.subscribe(self.parties["tax"], LODGED)
        witness_each_other(sandbox, list(self.parties.values()))
        self.bus = LocalBus(
            sandbox,
            folder,
            lambda: PikaTransport(name=f"{self.instance}-{next(counter)}"),
            settings=RuntimeSettings(retry_base=0.05, directory_poll=0.2),
        )
        self.witnessing = {}
        for name, party in self.parties.items():
            connector = self.bus.connector(name, party, {LODGED: lambda _d, _c: None})
            self.witnessing[name] = Witnessing(connector).install()
        for connector in self.bus.connectors.values():
            connector.start()

    def __getitem__(self, name: str):
        return self.bus.connectors[name]

    def close(self) -> None:
        self.bus.stop()
        rabbit.delete_queues(self.instance)

    def kept(self, name: str, witness: str | None = None):
        """Cosignatures ``name``'s store holds (of any log, by ``witness``)."""
        return self[name].store.cosignatures(witness=witness)

    def wait_for(self, condition, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = condition()
            if found:
                return found
            time.sleep(0.1)
        return condition()


@pytest.fixture
def bus(tmp_path):
    made = Bus(tmp_path)
    yield made
    made.close()


def _traffic(bus: Bus, n: int) -> None:
    bus["customs"].publish_many(LODGED, [example(LODGED) for _ in range(n)])


def _log_id(bus: Bus, name: str) -> str:
    return str(bus.parties[name].subsystem)


def test_each_head_is_cosigned_by_the_others(bus: Bus):
    """Customs publishes its head: civil and tax each check and cosign it, keep their
    cosignature and send it back; a later, larger head is proven consistent and cosigned."""
    _traffic(bus, 5)
    assert bus.witnessing["customs"].publish_heads() == 1
    customs = _log_id(bus, "customs")
    returned = bus.wait_for(lambda: len(bus["customs"].store.cosignatures(customs)) == 2)
    assert returned
    back = bus["customs"].store.cosignatures(customs)
    assert {c.witness for c in back} == {_log_id(bus, "civil"), _log_id(bus, "tax")}
    for cosignature in back:
        cosignature.verify(bus.bus.sandbox.ca.certificate)
    first = back[0].head.size
    _traffic(bus, 7)
    assert bus.witnessing["customs"].publish_heads() == 1
    assert bus.wait_for(lambda: len(bus["customs"].store.cosignatures(customs)) == 4)
    sizes = sorted({c.head.size for c in bus["customs"].store.cosignatures(customs)})
    assert sizes[0] == first < sizes[1]
    report = bus["customs"].log.verify(
        cosignatures=bus.kept("civil", _log_id(bus, "civil")),
        ca_certificate=bus.bus.sandbox.ca.certificate,
    )
    assert report.witnessed is not None
    assert report.witnessed.witnessed_size == sizes[1]


class Forged:
    """A keeper's other log under the same id and key: what someone holding the keeper's
    database and key can present instead of the real one."""

    def __init__(self, log: MessageLog) -> None:
        self.log = log

    @property
    def log_id(self) -> str:
        return self.log.log_id

    def signed_head(self):
        return self.log.signed_head()

    def consistency_proof(self, old_size: int, new_size: int):
        return self.log.consistency_proof(old_size, new_size)

    def keep(self, _cosignature) -> bool:
        return True


def _forge(bus: Bus, tmp_path, records: int) -> MessageLog:
    tax = bus["tax"]
    key, _ = bus.parties["tax"].keys.signer()
    forged = MessageLog(
        SQLiteLogStore(tmp_path / "forged.sqlite"), log_id=tax.log.log_id, signing_key=key
    )
    for i in range(records):
        forged.append(LogEntry("sent", f"{i:032x}", LODGED, tax.log.log_id, "x", b"{}"))
    forged.flush()
    return forged


@pytest.mark.parametrize(("extra", "code"), [(50, "log-split-view"), (-1, "log-rollback")])
def test_a_keeper_showing_another_log_is_refused_and_exposed(bus: Bus, tmp_path, extra, code):
    """Tax's head is cosigned; then tax presents another log signed with its own key (longer
    and rewritten, or shorter): every witness refuses to cosign it, with the code; and that
    log checked against the witnesses' cosignatures is a split view or a rollback."""
    _traffic(bus, 4)  # tax's log grows with the declarations it receives
    tax = _log_id(bus, "tax")
    bus.wait_for(lambda: bus["tax"].log.size >= 4)
    bus.witnessing["tax"].publish_heads()
    assert bus.wait_for(lambda: len(bus["tax"].store.cosignatures(tax)) == 2)
    witnessed = bus["tax"].store.cosignatures(tax)[0].head.size
    forged = _forge(bus, tmp_path, max(1, witnessed + extra))
    bus.witnessing["tax"].logs[tax] = Forged(forged)
    bus.witnessing["tax"].publish_heads()
    alarms = bus.wait_for(
        lambda: len(bus.witnessing["civil"].alarms) + len(bus.witnessing["customs"].alarms) == 2
    )
    assert alarms, "the witnesses did not refuse the forged head"
    assert {
        c.head.size for c in bus.kept("civil", _log_id(bus, "civil")) if c.head.log_id == tax
    } == {witnessed}
    assert code in bus["civil"].metrics.totals("rejected")
    error = LogSplitView if code == "log-split-view" else LogRollback
    witness_store = ConnectorStore(
        str(bus.bus.folder / f"{bus.parties['civil'].subsystem.slug}.db")
    )
    try:
        cosignatures = witness_store.cosignatures(tax)
    finally:
        witness_store.close()
    with pytest.raises(error):
        verify_log(
            forged.store,
            public_key=forged.public_key,
            log_id=tax,
            cosignatures=cosignatures,
            ca_certificate=bus.bus.sandbox.ca.certificate,
        )
    assert verify_log(forged.store, public_key=forged.public_key, log_id=tax).size > 0
    forged.close()
