"""Delivery receipts and message status (protocol.md §12), on the in-memory transport; the
same flow on RabbitMQ is in test_runtime_rabbitmq.py."""

from __future__ import annotations

import hashlib
import time

import orjson
import pytest

from connectors import REJECT_HEADER, OutboundMessage, dead_letter_queue, direct_key
from exchange import RECEIPT_TYPE, Recipient, build_envelope, parse_envelope
from exchange.log import ReceiptError, parse_receipt
from tests.support.federation import ALERT, LODGED, build_federation, example


def _states(connector, message_id: str, want: dict[str, str], timeout: float = 10.0) -> dict:
    """The delivery states of ``message_id`` once they are ``want`` (party -> state)."""
    deadline = time.monotonic() + timeout
    while True:
        found = {s.party: s.state for s in connector.store.delivery_states(message_id)}
        if found == want or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_an_event_is_received_then_handled_at_each_subscriber(fed):
    """The publisher learns, per subscriber, that its event arrived and was handled."""
    message_id = fed["customs"].publish(LODGED, example(LODGED))
    tax, treasury = (str(fed.parties[n].subsystem) for n in ("tax", "treasury"))
    want = {tax: "handled", treasury: "handled"}
    assert _states(fed["customs"], message_id, want) == want


def test_a_refusal_at_the_receiver_shows_at_the_sender_with_its_code(fed, broker):
    """A one-way message the receiver refuses (here: a payload its schema refuses, sent past
    the sender's own checks) is 'refused' with the code in the sender's status and metrics."""
    treasury = fed["treasury"]
    body = build_envelope(
        treasury.signer(),
        message_type=ALERT,
        schema_version="1.0.0",
        kind="message",
        payload=orjson.dumps({"account": 12}),
        classification="RESTRICTED",
        recipient=treasury.outbox.recipient(fed.parties["tax"].subsystem),
    )
    message_id = parse_envelope(body).header.id
    broker.route(OutboundMessage(direct_key(fed.parties["tax"].subsystem.slug), body, message_id))
    tax = str(fed.parties["tax"].subsystem)
    assert _states(treasury, message_id, {tax: "refused"}) == {tax: "refused"}
    (state,) = treasury.store.delivery_states(message_id)
    assert state.code == "schema-invalid"
    assert treasury.metrics.totals("refused_by_receiver") == {"schema-invalid": 1}


def test_a_receipt_proves_the_received_bytes_offline(fed, broker):
    """A receipt's records lead to the receiver's signed head: verified with the receiver's
    key alone; a record changed in any byte (here the digest of what arrived) fails."""
    carried: list[bytes] = []
    route = broker.route
    broker.route = lambda m: (carried.append(m.body), route(m))[1]
    message_id = fed["customs"].publish(LODGED, example(LODGED))
    tax = fed["tax"]
    deadline = time.monotonic() + 10
    receipt = None
    while receipt is None and time.monotonic() < deadline:
        for body in carried:
            envelope = parse_envelope(body)
            if envelope.header.type == RECEIPT_TYPE and envelope.header.sender == tax.me:
                parsed = parse_receipt(orjson.loads(envelope.payload))
                if parsed.received:
                    receipt = parsed
        time.sleep(0.05)
    assert receipt is not None
    (record, _path), *_ = receipt.received
    assert record.message_id == message_id
    assert record.envelope_sha256 == _sha256_of(carried, message_id)
    key = tax.signer().key.public_key()
    receipt.verify(str(tax.me), key)
    forged = receipt.as_dict()
    forged["received"][0]["record"]["envelope_sha256"] = "0" * 64
    with pytest.raises(ReceiptError, match="not in"):
        parse_receipt(forged).verify(str(tax.me), key)
    with pytest.raises(ReceiptError, match="head is of log"):
        receipt.verify(str(fed["treasury"].me), key)


def _sha256_of(carried: list[bytes], message_id: str) -> str:
    (body,) = [b for b in carried if parse_envelope(b).header.id == message_id]
    return hashlib.sha256(body).hexdigest()


def test_a_receipt_from_a_stranger_is_refused_as_forbidden(fed, broker):
    """Only a subsystem the recipient may send something to may send it receipts: the civil
    registry, to which customs sends nothing, is refused (dead-lettered as forbidden) and
    customs' status of its declaration is untouched."""
    customs, civil = fed["customs"], fed["civil"]
    message_id = customs.publish(LODGED, example(LODGED))
    body = build_envelope(
        civil.signer(),
        message_type=RECEIPT_TYPE,
        schema_version="1.0.0",
        kind="receipt",
        payload=orjson.dumps(
            {
                "head": None,
                "received": [],
                "handled": [{"message_id": message_id, "outcome": "failed", "reason": "forged"}],
            }
        ),
        classification="INTERNAL",
        recipient=Recipient(customs.me),
    )
    broker.route(OutboundMessage(direct_key(customs.me.slug), body, "stranger"))
    dead = []
    deadline = time.monotonic() + 10
    while not dead and time.monotonic() < deadline:
        dead += broker.drain(dead_letter_queue(customs.me.slug))
        time.sleep(0.05)
    assert [m.headers[REJECT_HEADER] for m in dead] == ["forbidden"]
    tax, treasury = (str(fed.parties[n].subsystem) for n in ("tax", "treasury"))
    want = {tax: "handled", treasury: "handled"}
    assert _states(customs, message_id, want) == want


def test_before_any_receipt_an_event_is_confirmed_at_each_subscriber(tmp_path, broker):
    """While no subscriber runs, the status of a published event names each subscriber of
    the directory as 'confirmed' by the broker (kept in memory, written when asked)."""
    federation = build_federation(tmp_path, broker.transport, start=False)
    try:
        customs = federation["customs"]
        customs.start()
        message_id = customs.publish(LODGED, example(LODGED))
        status = customs.status(message_id)
        assert status is not None
        assert (status.kind, status.to, status.sent_at is not None) == ("event", LODGED, True)
        parties = {str(federation.parties[n].subsystem) for n in ("tax", "treasury")}
        assert {(d.party, d.state) for d in status.deliveries} == {
            (p, "confirmed") for p in parties
        }
        assert customs.status("f" * 32) is None
    finally:
        federation.bus.stop()


def test_a_receipt_delivered_twice_is_only_logged(fed, broker):
    """A second copy of a receipt (a redelivery) is no refusal: not counted, not
    dead-lettered, and the status stays as the first copy made it."""
    carried: list[bytes] = []
    route = broker.route
    broker.route = lambda m: (carried.append(m.body), route(m))[1]
    customs = fed["customs"]
    message_id = customs.publish(LODGED, example(LODGED))
    tax, treasury = (str(fed.parties[n].subsystem) for n in ("tax", "treasury"))
    want = {tax: "handled", treasury: "handled"}
    assert _states(customs, message_id, want) == want
    receipt = next(b for b in carried if parse_envelope(b).header.type == RECEIPT_TYPE)
    size = customs.log.size
    broker.route(OutboundMessage(direct_key(customs.me.slug), receipt, "again"))
    deadline = time.monotonic() + 10
    while customs.log.size == size and time.monotonic() < deadline:
        time.sleep(0.05)
    assert customs.log.size == size + 1  # logged as rejected (duplicate), nothing more
    assert customs.metrics.totals("rejected") == {}
    assert broker.drain(dead_letter_queue(customs.me.slug)) == []
    assert _states(customs, message_id, want) == want


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        "receipt",
        {"head": None, "received": []},
        {"head": None, "received": [], "handled": [], "extra": 1},
        {"head": "x", "received": [], "handled": []},
        {"head": None, "received": ["not a record"], "handled": []},
        {"head": None, "received": [{"record": {}, "proof": []}], "handled": []},
        {"head": None, "received": [], "handled": [{"message_id": "a", "outcome": "maybe"}]},
        {"head": None, "received": [], "handled": [{"message_id": 7, "outcome": "handled"}]},
        {"head": {"v": 2}, "received": [], "handled": []},
    ],
)
def test_a_malformed_receipt_is_refused_by_code(payload):
    """Whatever shape a receipt payload takes, reading it gives receipt-invalid, never an
    uncaught error."""
    with pytest.raises(ReceiptError) as refused:
        parse_receipt(payload)
    assert refused.value.code == "receipt-invalid"
