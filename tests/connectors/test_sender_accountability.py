"""On the real RabbitMQ: a sender that cannot be authenticated gets no signed answer, and a
message every receiver would refuse for its size is refused at its source, never accepted
and then lost."""

from __future__ import annotations

import base64
import os
import time
from datetime import timedelta

import orjson
import pytest

from connectors import REJECT_HEADER, SendRefused, queue_name
from exchange import DEFAULT_MAX_SIZE, ERROR_TYPE, Recipient, build_envelope
from exchange.log import SQLiteLogStore
from tests.connectors.test_runtime_rabbitmq import _dead_letters, _slug, fed
from tests.support import rabbit
from tests.support.federation import LODGED, LOOKUP, Federation, example

__all__ = ["fed"]  # the fixture, shared with the runtime's tests


def _records(fed: Federation, name: str):
    """What the connector's log holds (it flushes after every batch it judges)."""
    store = SQLiteLogStore(fed.bus.folder / f"{_slug(fed, name)}.log.sqlite")
    try:
        return [s.record for chunk in store.scan() for s in chunk]
    finally:
        store.close()


def _forged_request(fed: Federation) -> bytes:
    """A request from tax with random bytes where the signature belongs."""
    body = orjson.loads(
        build_envelope(
            fed["tax"].signer(),
            message_type=LOOKUP,
            schema_version="1.0.0",
            kind="request",
            payload=orjson.dumps(example(LOOKUP)),
            classification="INTERNAL",
            recipient=Recipient(fed.parties["civil"].subsystem),
        )
    )
    body["signature"] = base64.b64encode(os.urandom(64)).decode()
    return orjson.dumps(body)


@pytest.mark.parametrize("signer_state", ["revoked", "expired"])
def test_no_signed_answer_to_a_sender_that_was_not_authenticated(fed: Federation, signer_state):
    """A request whose signer is revoked (or past its validity), carrying random signature
    bytes, is dead-lettered with its code and answered with nothing: civil signs no
    tabadul.error for someone it could not authenticate."""
    forged = _forged_request(fed)
    sandbox = fed.bus.sandbox
    if signer_state == "revoked":
        sandbox.revoke(fed.parties["tax"])
    else:
        sandbox.rotate(fed.parties["tax"], overlap=timedelta(seconds=-1))
    fed.bus.publish_directory()
    fed["civil"].refresh_directory()
    rabbit.inject(queue_name(_slug(fed, "civil")), forged, message_id="forged")
    letters = _dead_letters(fed, "civil", 1)
    code = "certificate-revoked" if signer_state == "revoked" else "certificate-expired"
    assert [p.headers[REJECT_HEADER] for p, _ in letters] == [code]
    time.sleep(0.5)  # an error reply, if one were sent, would be logged with the reject
    sent = [r for r in _records(fed, "civil") if r.direction == "sent"]
    assert [r.message_type for r in sent if r.message_type == ERROR_TYPE] == []
    assert fed.recorders["civil"].seen == []


def test_an_authenticated_sender_still_gets_its_signed_error(fed: Federation):
    """The rule only spares unauthenticated senders: a schema-invalid request from a valid
    signer is still answered with a signed tabadul.error."""
    invalid = build_envelope(
        fed["tax"].signer(),
        message_type=LOOKUP,
        schema_version="1.0.0",
        kind="request",
        payload=orjson.dumps({"cin": "not a card"}),
        classification="INTERNAL",
        recipient=Recipient(fed.parties["civil"].subsystem),
    )
    rabbit.inject(queue_name(_slug(fed, "civil")), invalid)
    deadline = time.monotonic() + 10
    sent = []
    while not sent and time.monotonic() < deadline:
        sent = [r for r in _records(fed, "civil") if r.message_type == ERROR_TYPE]
        time.sleep(0.1)
    assert [r.direction for r in sent] == ["sent"]


def _oversized_declaration() -> dict:
    """A declaration valid under its schema whose envelope exceeds the receive limit."""
    lodged = example(LODGED)
    item = lodged["items"][0]
    description = "وصف البضاعة المستوردة بالتفصيل " * 40
    lodged["items"] = [dict(item, description=description[:400]) for _ in range(999)]
    return lodged


def test_an_event_too_large_for_every_receiver_is_refused_at_its_source(fed: Federation):
    """A schema-valid event whose envelope would exceed the receivers' size limit is refused
    by the sending connector with `too-large`; nothing reaches the broker or is logged as
    sent, so no receiver dead-letters it as malformed while the sender believes it went."""
    payload = _oversized_declaration()
    report = fed["customs"].registry.validate(
        LODGED, fed["customs"].registry.latest(LODGED).version, payload
    )
    assert report.ok, report.errors
    assert len(orjson.dumps(payload)) < DEFAULT_MAX_SIZE < 4 * len(orjson.dumps(payload))
    with pytest.raises(SendRefused) as refused:
        fed["customs"].publish(LODGED, payload)
    assert refused.value.reason == "too-large"
    assert str(DEFAULT_MAX_SIZE) in refused.value.message
    assert [r for r in _records(fed, "customs") if r.direction == "sent"] == []
    time.sleep(0.5)
    assert _dead_letters(fed, "tax", 0, timeout=0.5) == []
    assert fed.recorders["tax"].seen == []
