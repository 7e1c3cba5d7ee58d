"""The connector's database on SQLite and on the real PostgreSQL."""

import time
import uuid
from datetime import timedelta

import psycopg
import pytest

from connectors import ConnectorStore, StoreError
from connectors._store import Accepted, DeadLetterIn, DeliveryState
from exchange import utcnow

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgres"])
def location(request, tmp_path):
    if request.param == "sqlite":
        yield str(tmp_path / "connector.db"), None
        return
    schema = f"t_conn_{uuid.uuid4().hex[:10]}"
    yield PG_URL, schema
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _accepted(n: int) -> list[Accepted]:
    keep = utcnow() + timedelta(minutes=10)
    return [Accepted(f"{i:032x}", keep, f"envelope {i}".encode()) for i in range(n)]


def test_accept_remember_and_reopen(location):
    """Accepted ids are seen (also after reopening), pending in the inbox, in order."""
    url, schema = location
    store = ConnectorStore(url, schema=schema)
    store.accept(_accepted(3))
    assert store.contains(f"{1:032x}")
    assert [e.message_id for e in store.pending()] == [f"{i:032x}" for i in range(3)]
    store.close()
    again = ConnectorStore(url, schema=schema)
    assert again.contains(f"{2:032x}")
    assert again.already_seen([f"{2:032x}", "f" * 32]) == {f"{2:032x}"}
    again.close()


def test_inbox_states_and_stored_responses(location):
    """done (one by one and in groups), held then released, failed; a stored response."""
    url, schema = location
    store = ConnectorStore(url, schema=schema)
    ids = [a.message_id for a in _accepted(5)]
    store.accept(_accepted(5))
    store.finish(ids[0], response=(ids[0], b"the answer"))
    store.finish_many(ids[1:3])
    store.hold(ids[3])
    store.finish(ids[4], failed="handler failed 5 times")
    assert store.counts() == {"done": 3, "held": 1, "failed": 1}
    assert store.response_for(ids[0]) == b"the answer"
    assert [e.message_id for e in store.held()] == [ids[3]]
    assert store.release([ids[3], ids[0]]) == 1
    assert store.held() == []
    assert store.attempted(ids[4]) == 1
    store.close()


def test_accepting_an_id_twice_is_refused(location):
    """The database is the arbiter of replays: a second accept of the same id fails."""
    url, schema = location
    store = ConnectorStore(url, schema=schema)
    store.accept(_accepted(1))
    with pytest.raises(StoreError, match="already accepted"):
        store.accept(_accepted(1))
    store.close()


def test_a_stopped_replicas_entries_are_taken_over_once(location):
    """Pending entries untouched since the cutoff are claimed, and only once (claiming
    renews their lease); an entry its holder renewed (touch), an excluded one (our own) and a
    finished one stay put."""
    url, schema = location
    store = ConnectorStore(url, schema=schema)
    try:
        store.accept(_accepted(3))
        ids = [f"{i:032x}" for i in range(3)]
        time.sleep(0.05)
        cutoff = utcnow()
        time.sleep(0.05)
        store.touch([ids[0]])  # still in the hands of a living replica
        claimed = store.claim_stale(cutoff, exclude={ids[1]})
        assert [e.message_id for e in claimed] == [ids[2]]
        assert claimed[0].envelope == b"envelope 2"
        assert [e.message_id for e in store.claim_stale(cutoff, exclude=set())] == [ids[1]]
        assert store.claim_stale(cutoff, exclude=set()) == []
        store.finish(ids[0])
        later = [e.message_id for e in store.claim_stale(utcnow() + timedelta(1), set())]
        assert later == ids[1:]
    finally:
        store.close()


def test_delivery_states_only_move_on(location):
    """A message's state per party goes confirmed -> received or refused -> handled or
    failed and never back, whatever order the steps arrive in; several steps of one call
    keep the furthest; a handled notice keeps the type the receipt gave."""
    url, schema = location
    store = ConnectorStore(url, schema=schema)
    m, tax, treasury = "a" * 32, "MA/GOV/MEF/TAX", "MA/GOV/MEF/TREASURY"
    step = DeliveryState
    store.note_deliveries([step(m, tax, "t.x", "received", None, "2026-12-03T10:00:01.000Z")])
    store.note_deliveries(  # the broker's confirm, overtaken by the receipt
        [
            step(m, tax, "t.x", "confirmed", None, "2026-12-03T10:00:00.000Z"),
            step(m, treasury, "t.x", "confirmed", None, "2026-12-03T10:00:00.000Z"),
            step(m, treasury, "t.x", "refused", "stale", "2026-12-03T10:00:02.000Z"),
        ]
    )
    store.note_deliveries([step(m, tax, "", "handled", None, "2026-12-03T10:00:03.000Z")])
    store.note_deliveries([step(m, tax, "t.x", "received", None, "2026-12-03T10:00:04.000Z")])
    found = {s.party: (s.message_type, s.state, s.code, s.at) for s in store.delivery_states(m)}
    assert found == {
        tax: ("t.x", "handled", None, "2026-12-03T10:00:03.000Z"),
        treasury: ("t.x", "refused", "stale", "2026-12-03T10:00:02.000Z"),
    }
    assert store.delivery_states("b" * 32) == []
    resent = "c" * 32  # failed, then handled after the receiver resent its dead letter
    store.note_deliveries([step(resent, tax, "t.x", "failed", "boom", "2026-12-03T10:00:05.000Z")])
    store.note_deliveries([step(resent, tax, "t.x", "handled", None, "2026-12-03T10:09:00.000Z")])
    store.note_deliveries([step(resent, tax, "t.x", "failed", "late", "2026-12-03T10:00:06.000Z")])
    assert [(s.state, s.code) for s in store.delivery_states(resent)] == [("handled", None)]
    store.close()


def test_dead_letters_are_kept_once_and_resolved_once(location):
    """A dead letter taken in twice is kept once; resolving is one transaction: a resend
    reopens the failed inbox entry (pending, no attempts, its lease expired) or changes
    nothing when there is no failed entry; a resolved letter is not resolved again."""
    url, schema = location
    store = ConnectorStore(url, schema=schema)
    [entry] = _accepted(1)
    store.accept([entry])
    store.attempted(entry.message_id)
    store.finish(entry.message_id, failed="handler failed 1 times: boom")
    letters = [
        DeadLetterIn(entry.message_id, "handler-failed", "boom", entry.envelope),
        DeadLetterIn("", "malformed", "not JSON", b"\x00"),
    ]
    assert store.keep_dead_letters(letters) == 2
    assert store.keep_dead_letters(letters[:1]) == 0
    first, second = store.dead_letters()
    assert (first.code, first.state, second.message_id) == ("handler-failed", "waiting", "")
    assert (
        store.resolve_dead_letter(second.seq, "resent", actor="a", reason="", reopen="f" * 32)
        is None
    )
    assert store.dead_letter(second.seq).state == "waiting"  # rolled back
    done = store.resolve_dead_letter(
        first.seq, "resent", actor="ops", reason="fixed", reopen=entry.message_id
    )
    assert done is not None
    assert (done.state, [(a.action, a.actor, a.reason) for a in done.actions]) == (
        "resent",
        [("resent", "ops", "fixed")],
    )
    [pending] = store.pending()
    assert (pending.message_id, pending.attempts) == (entry.message_id, 0)
    assert [e.message_id for e in store.claim_stale(utcnow() - timedelta(seconds=5), set())] == [
        entry.message_id
    ]
    assert store.resolve_dead_letter(first.seq, "discarded", actor="ops", reason="x") is None
    assert [d.seq for d in store.dead_letters(state="waiting")] == [second.seq]
    assert [d.seq for d in store.dead_letters(after=first.seq)] == [second.seq]
    store.close()
