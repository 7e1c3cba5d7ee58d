"""Transactional handlers: their writes to the connector's database commit with their
message's done mark (and a request's stored response), or not at all. The SIGKILL proof on
RabbitMQ is tests/reliability/test_faults.py (tax's handler there is transactional)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import sqlalchemy as sa

from connectors import Delivery, MemoryBroker, Refuse, RemoteError, Transactional
from tests.support.federation import LODGED, LOOKUP, LOOKUP_REPLY, build_federation, example

TABLES = sa.MetaData()
EFFECTS = sa.Table(
    "effects",
    TABLES,
    sa.Column("message_id", sa.String(32), primary_key=True),
    sa.Column("key", sa.Text, nullable=False),
)


def _effects(connector) -> list[tuple[str, str]]:
    with connector.store._engine.begin() as conn:  # the handler's table, read back
        return [tuple(r) for r in conn.execute(sa.select(EFFECTS.c.message_id, EFFECTS.c.key))]


def _done(connector, count: int, timeout: float = 10.0) -> None:
    """Wait until ``count`` inbox entries are done and none is pending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = connector.store.counts()
        if counts.get("done", 0) >= count and not counts.get("pending"):
            return
        time.sleep(0.05)
    pytest.fail(f"not done in {timeout} s: {connector.store.counts()}")


@pytest.fixture
def federation(tmp_path):
    fed = build_federation(tmp_path, MemoryBroker().transport, start=False)
    yield fed
    fed.bus.stop()


def _start(fed) -> None:
    for connector in fed.bus.connectors.values():
        connector.start()


def test_an_events_writes_commit_with_its_done_mark(federation):
    """Each declaration's row is written once, in the transaction that marks it done; the
    handler's table is created when the connector starts."""
    tax = federation["tax"]

    def lodged(delivery: Delivery, _ctx: Any, tx: sa.Connection) -> None:
        key = delivery.payload["declaration_number"]
        tx.execute(EFFECTS.insert(), {"message_id": delivery.message_id, "key": key})

    tax.handlers[LODGED] = Transactional(lodged, TABLES)
    _start(federation)
    declarations = [example(LODGED) for _ in range(3)]
    for i, declaration in enumerate(declarations):
        declaration["declaration_number"] = f"{declaration['declaration_number'][:-1]}{i}"
    federation["customs"].publish_many(LODGED, declarations)
    _done(tax, 3)
    rows = _effects(tax)
    assert sorted(key for _, key in rows) == sorted(d["declaration_number"] for d in declarations)


def test_a_failed_attempt_leaves_none_of_its_writes(federation):
    """A handler that wrote and then failed is rolled back: its retry starts afresh and the
    effect is there once."""
    tax = federation["tax"]
    attempts: list[int] = []

    def flaky(delivery: Delivery, _ctx: Any, tx: sa.Connection) -> None:
        tx.execute(EFFECTS.insert(), {"message_id": delivery.message_id, "key": "written"})
        attempts.append(delivery.attempt)
        if delivery.attempt == 1:
            raise RuntimeError("the agency's code failed after its write")

    tax.handlers[LODGED] = Transactional(flaky, TABLES)
    _start(federation)
    federation["customs"].publish(LODGED, example(LODGED))
    _done(tax, 1)
    assert attempts == [1, 2]
    assert len(_effects(tax)) == 1  # the second attempt's write only (the first would clash)


def test_a_request_is_answered_in_its_handlers_transaction(federation):
    """A request's handler writes, and its response is stored, in one transaction; a
    refusal rolls the handler's writes back and answers the error."""
    civil = federation["civil"]

    def lookup(delivery: Delivery, _ctx: Any, tx: sa.Connection) -> Any:
        cin = delivery.payload["cin"]
        tx.execute(EFFECTS.insert(), {"message_id": delivery.message_id, "key": cin})
        if cin == "ZZ999999":
            raise Refuse("no such card number in the register", "not-found")
        reply = example(LOOKUP_REPLY)
        reply["person"]["cin"] = cin
        return reply

    civil.handlers[LOOKUP] = Transactional(lookup, TABLES)
    _start(federation)
    tax, to = federation["tax"], federation.parties["civil"].subsystem
    asked = example(LOOKUP)
    assert tax.request(LOOKUP, to, asked)["person"]["cin"] == asked["cin"]
    with pytest.raises(RemoteError) as refused:
        tax.request(LOOKUP, to, dict(asked, cin="ZZ999999"))
    assert refused.value.remote_code == "not-found"
    rows = _effects(civil)
    assert [key for _, key in rows] == [asked["cin"]]
    assert civil.store.response_for(rows[0][0]) is not None


def test_a_message_finished_elsewhere_meanwhile_rolls_the_run_back(federation):
    """When another replica finished the message while this run's handler was in its
    transaction (a lease taken over, a resumed entry), this run's writes are rolled back:
    the effect is there once, from whoever finished first."""
    tax = federation["tax"]
    runs: list[str] = []

    def lodged(delivery: Delivery, _ctx: Any, tx: sa.Connection) -> None:
        tax.store.finish(delivery.message_id)  # as another replica would, meanwhile
        tx.execute(EFFECTS.insert(), {"message_id": delivery.message_id, "key": "late"})
        runs.append(delivery.message_id)

    tax.handlers[LODGED] = Transactional(lodged, TABLES)
    _start(federation)
    federation["customs"].publish(LODGED, example(LODGED))
    _done(tax, 1)
    time.sleep(0.3)  # no retry follows
    assert len(runs) == 1
    assert _effects(tax) == []
