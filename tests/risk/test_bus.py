"""The customs risk service on the real RabbitMQ: declaration lodged -> risk assessed (lane,
score, reasons, model version; encrypted to customs) -> inspection result -> retrain."""

from __future__ import annotations

import base64
import itertools
import json
import threading

import pytest

import risk
from connectors import Delivery, LocalBus, PikaTransport, Refuse, RuntimeSettings
from connectors.ministries import customs
from exchange import SubsystemId
from exchange.sandbox import Sandbox
from risk import (
    ModelNotForBus,
    ModelStore,
    RiskService,
    bus_layout,
    infer_layout,
    read_tables,
    retrain,
    train,
)
from schemas import default_registry
from tabadul._risk_service import TERMS, risk_handlers
from tests.support import rabbit
from tests.support.served import wait_until

REGISTRY = default_registry()


@pytest.fixture(scope="module")
def sample():
    return read_tables([risk.SAMPLE])


@pytest.fixture
def store(tmp_path, sample):
    store = ModelStore(tmp_path / "model")
    store.save(train(sample.frame, bus_layout(sample.frame)), training={})
    return store


class Desk:
    """Customs' side: keeps every assessment it receives."""

    def __init__(self):
        self.lock = threading.Lock()
        self.assessments: list[dict] = []

    def __call__(self, delivery, _ctx):
        with self.lock:
            self.assessments.append(delivery.payload)

    def latest(self) -> dict[str, dict]:
        with self.lock:
            return {a["declaration_number"]: a for a in self.assessments}


@pytest.fixture
def bus(tmp_path, store):
    instance = rabbit.unique_instance()
    sandbox = Sandbox(instance)
    desk_party = sandbox.add(f"{instance}/GOV/MEF/CUSTOMS")
    risk_party = sandbox.add(f"{instance}/GOV/MEF/CUSTOMS-RISK")
    for entry in REGISTRY.entries():
        sandbox.classify(entry.type, entry.classification.value, entry.version, entry.digest)
    sandbox.publish(desk_party, customs.DECLARATION_LODGED)
    sandbox.subscribe(risk_party, customs.DECLARATION_LODGED)
    sandbox.grant(risk_party, customs.RISK_ASSESSED, desk_party, **TERMS[customs.RISK_ASSESSED])
    sandbox.grant(
        desk_party, customs.INSPECTION_RESULT, risk_party, **TERMS[customs.INSPECTION_RESULT]
    )
    counter = itertools.count()
    local = LocalBus(
        sandbox,
        tmp_path / "bus",
        lambda: PikaTransport(name=f"{instance}-{next(counter)}"),
        settings=RuntimeSettings(retry_base=0.05),
    )
    service = RiskService(store)
    desk = Desk()
    local.connector("customs", desk_party, {customs.RISK_ASSESSED: desk}).start()
    local.connector("risk", risk_party, risk_handlers(service)).start()
    yield local, service, desk, risk_party
    local.stop()
    service.close()
    rabbit.delete_queues(instance)


def test_declarations_are_assessed_inspected_and_learnt_from(bus, store, sample):
    local, service, desk, risk_party = bus
    lodged = [pair[0] for pair in customs.declarations()]
    for declaration in lodged:
        local.connectors["customs"].publish(customs.DECLARATION_LODGED, declaration)
    numbers = {d["declaration_number"] for d in lodged}
    assert wait_until(lambda: set(desk.latest()) == numbers, timeout=30)

    lanes = store.load().model.lanes
    for declaration in lodged:
        assessment = desk.latest()[declaration["declaration_number"]]
        assert assessment["model"] == {"version": "0001", "digest": store.load().digest}
        assert [item["line"] for item in assessment["items"]] == [
            item["line"] for item in declaration["items"]
        ]
        assert assessment["score"] == max(item["score"] for item in assessment["items"])
        for item in assessment["items"]:
            assert item["lane"] == lanes.lane(item["score"])
            assert bool(item["reasons"]) == (item["lane"] != "green")  # where someone acts
            for reason in item["reasons"]:
                assert set(reason["labels"]) == {"ar", "fr", "en"}

    # on the wire and in customs' log the assessments are sealed to customs' key
    log = local.connectors["customs"].log
    received = [
        stored.record
        for chunk in log.store.scan()
        for stored in chunk
        if stored.record.message_type == customs.RISK_ASSESSED
    ]
    assert len(received) >= len(lodged)
    for record in received:
        envelope = json.loads(record.envelope)
        assert envelope["header"]["encryption"] is not None
        assert b"declaration_number" not in base64.b64decode(envelope["payload"])

    for number in sorted(numbers):
        result = customs.inspection_result(number, "2026-11-10T09:00:00+01:00")
        local.connectors["customs"].send(
            customs.INSPECTION_RESULT, f"{risk_party.subsystem}", result
        )
    assert wait_until(lambda: service.outcomes.counts()["inspected"] == len(numbers), 30)
    labelled = service.outcomes.labelled("Fraud")
    frauds_by_row = dict(zip(labelled["Declaration ID"], labelled["Fraud"], strict=True))
    assert frauds_by_row["301-2026-0001235/1"] == "1"
    assert frauds_by_row["309-2026-0004410/1"] == "0"  # fraud found on line 2 only
    assert frauds_by_row["309-2026-0004410/2"] == "1"
    assert frauds_by_row["309-2026-0004415/1"] == "0"  # a documents finding without duties

    done = retrain(store, service.outcomes, sample)
    assert done.previous == "0001"
    assert done.judged_rows == len(labelled)
    assert done.judged_frauds == sum(v == "1" for v in labelled["Fraud"])
    assert done.rows == len(sample.frame) + len(labelled)
    expected = "0002" if done.replaced else "0001"
    assert store.current() == expected
    local.connectors["customs"].publish(customs.DECLARATION_LODGED, lodged[0])
    assert wait_until(
        lambda: (
            desk.assessments[-1]["model"]["version"] == expected
            and len(desk.assessments) > len(lodged)
        ),
        timeout=30,
    )


def test_an_unreadable_declaration_is_refused_not_retried(store, tmp_path):
    """A payload the mapping cannot read (the schema would stop it first on the bus) is a
    coded refusal from the handler, not an endless retry."""
    service = RiskService(store)
    handler = risk_handlers(service)[customs.DECLARATION_LODGED]
    delivery = Delivery(
        "m1",
        customs.DECLARATION_LODGED,
        "event",
        SubsystemId.parse("MA/GOV/MEF/CUSTOMS"),
        {"declaration_number": "301-2026-0000001"},
    )
    with pytest.raises(Refuse) as refused:
        handler(delivery, None)
    assert refused.value.code == "not-a-declaration"
    service.close()


def test_a_model_reading_columns_the_bus_lacks_is_not_served(tmp_path, sample):
    full = infer_layout(
        sample.frame, id_column="Declaration ID", label="Fraud", time="Date",
        exclude=["Critical Fraud"],
    )  # fmt: skip
    store = ModelStore(tmp_path / "full")
    store.save(train(sample.frame, full), training={})
    with pytest.raises(ModelNotForBus) as refused:
        RiskService(store)
    assert refused.value.code == "model-not-for-bus"
    assert "Seller ID" in refused.value.details["columns"]
