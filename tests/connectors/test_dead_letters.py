"""Dead-letter management on the in-memory transport: what a connector refused or could not
handle is taken off its dead-letter queue, shown (never an encrypted payload), resent to the
handler after a fix (never published again), or discarded with a reason; each action
recorded. The same on RabbitMQ, with the CLI, is in test_runtime_rabbitmq.py."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import timedelta

import orjson
import pytest

from connectors import (
    REASON_HEADER,
    REJECT_HEADER,
    DeadLetterView,
    InboundMessage,
    MemoryBroker,
    NotResendable,
    OutboundMessage,
    RuntimeSettings,
    StoreError,
    TransportError,
    UnknownDeadLetter,
    dead_letter_queue,
    direct_key,
)
from connectors._api import create_app
from connectors._dead_letters import BadDeadLetterInput, DeadLetterResolved, dead_letter_in
from connectors._store import DeadLetterIn
from exchange import build_envelope
from tests.support.federation import LODGED, LOOKUP, Federation, build_federation, example
from tests.support.served import Served

PROBLEM = "application/problem+json"


@pytest.fixture
def fed(tmp_path, broker) -> Iterator[Federation]:
    """Quick retries: a failing handler gives up after two attempts."""
    settings = RuntimeSettings(
        retry_base=0.01,
        max_attempts=2,
        directory_poll=0.1,
        takeover_after=timedelta(seconds=0.4),
    )
    federation = build_federation(tmp_path, broker.transport, settings=settings)
    yield federation
    federation.bus.stop()


class Breakable:
    """A handler that fails while ``broken``, then does what ``real`` does."""

    def __init__(self, real) -> None:
        self.real = real
        self.broken = True
        self.calls = 0

    def __call__(self, delivery, ctx):
        self.calls += 1
        if self.broken:
            raise RuntimeError("the ledger is unavailable")
        return self.real(delivery, ctx)


def _break(fed: Federation, name: str, message_type: str) -> Breakable:
    handlers = fed[name].handling.handlers
    handlers[message_type] = Breakable(handlers[message_type])
    return handlers[message_type]


def _wait_for_dead_letters(fed: Federation, name: str, count: int) -> list[DeadLetterView]:
    deadline = time.monotonic() + 10
    found: list[DeadLetterView] = []
    while len(found) < count and time.monotonic() < deadline:
        time.sleep(0.05)
        found = list(fed[name].dead_letters.list().letters)
    return found


def _wait_for_inbox(fed: Federation, name: str, message_id: str, state: str) -> None:
    deadline = time.monotonic() + 10
    while fed[name].store.inbox_state(message_id) != state and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fed[name].store.inbox_state(message_id) == state


def _tampered_lookup(fed: Federation, classification: str = "INTERNAL") -> bytes:
    """A request from tax to the civil registry whose payload was changed after signing."""
    data = build_envelope(
        fed["tax"].signer(),
        message_type=LOOKUP,
        schema_version="1.0.0",
        kind="request",
        payload=orjson.dumps(example(LOOKUP)),
        classification=classification,
        recipient=fed["tax"].outbox.recipient(fed.parties["civil"].subsystem),
    )
    doc = json.loads(data)
    forged = base64.b64decode(doc["payload"]) + b" "
    doc["payload"] = base64.b64encode(forged).decode()
    return json.dumps(doc).encode()


def _inject(broker: MemoryBroker, fed: Federation, name: str, body: bytes) -> None:
    slug = fed.parties[name].subsystem.slug
    broker.route(OutboundMessage(direct_key(slug), body, "x"))


def test_a_failed_handlers_message_is_kept_shown_and_resent_after_the_fix(fed: Federation):
    """An event whose handler failed every attempt is a dead letter handler-failed, shown
    with its header and (asked for, plain) payload; once the handler is fixed, resend gives
    it to the handler again: handled once, marked done, the action recorded. A second
    resend, or a discard after it, is refused: it is resolved."""
    handler = _break(fed, "treasury", LODGED)
    payload = example(LODGED)
    message_id = fed["customs"].publish(LODGED, payload)
    [letter] = _wait_for_dead_letters(fed, "treasury", 1)
    assert (letter.message_id, letter.code, letter.state) == (
        message_id,
        "handler-failed",
        "waiting",
    )
    assert letter.resendable
    assert not letter.encrypted
    assert handler.calls == 2
    _wait_for_inbox(fed, "treasury", message_id, "failed")

    shown = fed["treasury"].dead_letters.show(letter.seq, payload=True)
    assert shown.header is not None
    assert shown.header["type"] == LODGED
    assert shown.header["sender"] == str(fed.parties["customs"].subsystem)
    assert shown.payload == payload
    assert "the ledger is unavailable" in shown.reason
    assert fed["treasury"].dead_letters.show(letter.seq).payload is None  # not asked for

    handler.broken = False
    resent = fed["treasury"].dead_letters.resend(letter.seq, actor="ops-7", reason="ledger back")
    assert resent.state == "resent"
    assert not resent.resendable
    assert [(a.action, a.actor, a.reason) for a in resent.actions] == [
        ("resent", "ops-7", "ledger back")
    ]
    seen = fed.recorders["treasury"].wait_for(1)
    assert [d.message_id for d in seen] == [message_id]
    _wait_for_inbox(fed, "treasury", message_id, "done")
    assert handler.calls == 3

    with pytest.raises(DeadLetterResolved) as again:
        fed["treasury"].dead_letters.resend(letter.seq, actor="ops-8")
    assert again.value.code == "dead-letter-resolved"
    assert "ops-7" in again.value.message
    with pytest.raises(DeadLetterResolved):
        fed["treasury"].dead_letters.discard(letter.seq, actor="ops-8", reason="late")
    time.sleep(0.3)
    assert len(fed.recorders["treasury"].seen) == 1  # handled once, never published again
    assert [v.state for v in fed["treasury"].dead_letters.list().letters] == ["resent"]


def test_a_refused_message_cannot_be_resent_and_is_discarded_with_a_reason(
    fed: Federation, broker: MemoryBroker
):
    """A forged request is refused before it is accepted: only its sender can send a new
    message, so resend is refused (not-resendable, saying so); discard needs a reason and
    records it; list filters by state."""
    _inject(broker, fed, "civil", _tampered_lookup(fed))
    [letter] = _wait_for_dead_letters(fed, "civil", 1)
    assert (letter.code, letter.resendable) == ("bad-signature", False)
    desk = fed["civil"].dead_letters
    with pytest.raises(NotResendable) as refused:
        desk.resend(letter.seq, actor="ops-1")
    assert refused.value.code == "not-resendable"
    assert str(fed.parties["tax"].subsystem) in refused.value.message
    with pytest.raises(BadDeadLetterInput):
        desk.discard(letter.seq, actor="ops-1", reason="  ")
    with pytest.raises(BadDeadLetterInput):
        desk.discard(letter.seq, actor=" ", reason="forged")
    with pytest.raises(BadDeadLetterInput):
        desk.discard(letter.seq, actor="ops-1", reason="x" * 501)
    with pytest.raises(BadDeadLetterInput):
        desk.discard(letter.seq, actor="o" * 201, reason="forged")
    discarded = desk.discard(letter.seq, actor="ops-1", reason="forged payload, sender told")
    assert discarded.state == "discarded"
    assert [(a.action, a.reason) for a in discarded.actions] == [
        ("discarded", "forged payload, sender told")
    ]
    assert desk.list(state="waiting").letters == ()
    assert [v.seq for v in desk.list(state="discarded").letters] == [letter.seq]
    with pytest.raises(UnknownDeadLetter):
        desk.show(letter.seq + 100)
    with pytest.raises(BadDeadLetterInput):
        desk.list(state="lost")


def test_an_encrypted_payload_is_never_shown(fed: Federation, broker: MemoryBroker):
    """A RESTRICTED request is encrypted to the civil registry: its dead letter shows the
    header, never the payload, even when asked for."""
    _inject(broker, fed, "civil", _tampered_lookup(fed, "RESTRICTED"))
    [letter] = _wait_for_dead_letters(fed, "civil", 1)
    shown = fed["civil"].dead_letters.show(letter.seq, payload=True)
    assert shown.encrypted
    assert shown.header is not None
    assert shown.header["encryption"]
    assert (shown.payload, shown.payload_note) == (None, "withheld: encrypted")
    assert example(LOOKUP)["cin"] not in json.dumps(shown.as_dict())


def test_bytes_that_are_not_an_envelope_are_kept_and_shown_as_such(
    fed: Federation, broker: MemoryBroker
):
    _inject(broker, fed, "civil", b"\x00not json")
    [letter] = _wait_for_dead_letters(fed, "civil", 1)
    assert letter.code == "malformed"
    shown = fed["civil"].dead_letters.show(letter.seq, payload=True)
    assert shown.header is None
    assert shown.unreadable
    assert shown.size == 9
    with pytest.raises(NotResendable):
        fed["civil"].dead_letters.resend(letter.seq, actor="ops-1")


def test_taking_in_loses_nothing_and_keeps_each_dead_letter_once(
    fed: Federation, broker: MemoryBroker
):
    """If the database cannot keep what was taken off the queue, it stays in the queue; the
    same dead letter taken in twice (a crash before its acknowledgement) is kept once."""
    _inject(broker, fed, "civil", _tampered_lookup(fed))
    queue = broker.queue(dead_letter_queue(fed.parties["civil"].subsystem.slug))
    deadline = time.monotonic() + 10
    while queue.qsize() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    store = fed["civil"].store
    real = store.keep_dead_letters

    def failing(_letters):
        raise StoreError("connector database failed to keep dead letters: disk full")

    store.keep_dead_letters = failing
    with pytest.raises(StoreError):
        fed["civil"].dead_letters.list()
    assert queue.qsize() == 1
    store.keep_dead_letters = real
    [letter] = fed["civil"].dead_letters.list().letters
    assert queue.qsize() == 0
    again = DeadLetterIn(
        letter.message_id, letter.code, letter.reason, store.dead_letter(letter.seq).envelope
    )
    assert store.keep_dead_letters([again]) == 0
    assert len(fed["civil"].dead_letters.list().letters) == 1


def test_what_the_broker_dead_lettered_itself_is_named_by_its_reason():
    """A quorum queue's delivery limit (or an expiry) dead-letters without the connector's
    headers: the code says the broker did it, and why."""
    message = InboundMessage(
        b"{}", 1, "MA-GOV-MEF-TAX", False, "m1", None,
        {"x-first-death-reason": "delivery_limit", "x-first-death-queue": "tabadul.q.x"},
    )  # fmt: skip
    kept = dead_letter_in(message)
    assert (kept.code, kept.reason) == (
        "broker-delivery_limit",
        "dead-lettered by the broker from tabadul.q.x",
    )
    ours = dead_letter_in(
        InboundMessage(
            b"{}", 2, "x", False, "m2", None, {REJECT_HEADER: "expired", REASON_HEADER: "old"}
        )
    )
    assert (ours.code, ours.reason) == ("expired", "old")


def test_the_local_api_lists_shows_resends_and_discards(fed: Federation, broker: MemoryBroker):
    """The same through the local API, with problem documents: 404 for an unknown number,
    409 for a resolved one or one that cannot be resent, 422 without a reason."""
    handler = _break(fed, "treasury", LODGED)
    message_id = fed["customs"].publish(LODGED, example(LODGED))
    _wait_for_dead_letters(fed, "treasury", 1)
    _wait_for_inbox(fed, "treasury", message_id, "failed")
    served = Served(create_app(fed["treasury"], token="s3cret"))
    try:
        api = served.client(timeout=30.0, headers={"Authorization": "Bearer s3cret"})
        listed = api.get("/dead-letters")
        assert listed.status_code == 200, listed.text
        doc = listed.json()
        assert doc["subsystem"] == str(fed.parties["treasury"].subsystem)
        [row] = doc["dead_letters"]
        assert (row["message_id"], row["code"], row["type"]) == (
            message_id,
            "handler-failed",
            LODGED,
        )
        seq = row["seq"]
        shown = api.get(f"/dead-letters/{seq}", params={"payload": "true"})
        assert shown.json()["payload"] == example(LODGED)
        assert api.get("/dead-letters/999").status_code == 404
        assert api.get("/dead-letters/999").json()["code"] == "unknown-dead-letter"
        no_reason = api.post(f"/dead-letters/{seq}/discard", json={"actor": "ops"})
        assert (no_reason.status_code, no_reason.json()["code"]) == (422, "invalid-input")
        handler.broken = False
        resent = api.post(f"/dead-letters/{seq}/resend", json={"actor": "ops", "reason": "fixed"})
        assert resent.status_code == 200, resent.text
        assert resent.json()["actions"][0]["actor"] == "ops"
        twice = api.post(f"/dead-letters/{seq}/resend", json={"actor": "ops"})
        assert (twice.status_code, twice.headers["content-type"]) == (409, PROBLEM)
        assert twice.json()["code"] == "dead-letter-resolved"
        assert fed.recorders["treasury"].wait_for(1)[0].message_id == message_id
        anonymous = served.client(timeout=30.0).get("/dead-letters")
        assert anonymous.status_code == 401
    finally:
        served.close()


def test_a_resent_message_that_fails_again_waits_again(fed: Federation):
    """Resent before the fix really holds, the handler fails again: the dead letter waits
    again (one letter, its return recorded) and can be resent once more."""
    handler = _break(fed, "treasury", LODGED)
    message_id = fed["customs"].publish(LODGED, example(LODGED))
    [letter] = _wait_for_dead_letters(fed, "treasury", 1)
    _wait_for_inbox(fed, "treasury", message_id, "failed")
    desk = fed["treasury"].dead_letters
    desk.resend(letter.seq, actor="ops-1", reason="too early")
    deadline = time.monotonic() + 10
    while desk.show(letter.seq).state != "waiting" and time.monotonic() < deadline:
        time.sleep(0.05)
    again = desk.show(letter.seq)
    assert again.state == "waiting"
    assert again.resendable
    assert [a.action for a in again.actions] == ["resent", "returned"]
    assert "the ledger is unavailable" in again.actions[-1].reason
    assert handler.calls == 4
    handler.broken = False
    desk.resend(letter.seq, actor="ops-1", reason="fixed now")
    assert [d.message_id for d in fed.recorders["treasury"].wait_for(1)] == [message_id]
    _wait_for_inbox(fed, "treasury", message_id, "done")
    assert len(desk.list().letters) == 1


def test_kept_dead_letters_stay_readable_when_the_queue_cannot_be_read(
    fed: Federation, broker: MemoryBroker
):
    """With the broker out of reach, listing says so and shows what was kept; showing one
    still works."""
    _inject(broker, fed, "civil", _tampered_lookup(fed))
    [letter] = _wait_for_dead_letters(fed, "civil", 1)
    transport = fed["civil"].transport

    def unreachable(_slug, _keep, *, limit=500):
        raise TransportError("cannot reach the broker: connection refused")

    transport.take_dead_letters = unreachable
    page = fed["civil"].dead_letters.list()
    assert page.queue_error == "cannot reach the broker: connection refused"
    assert [v.seq for v in page.letters] == [letter.seq]
    assert fed["civil"].dead_letters.show(letter.seq).code == "bad-signature"
