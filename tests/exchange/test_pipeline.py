import base64
import hashlib
import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange import (
    REJECT_CODES,
    Accepted,
    BadSignature,
    CertificateExpired,
    CertificateRevoked,
    Duplicate,
    Expired,
    Forbidden,
    Malformed,
    MemorySeenStore,
    Rejected,
    RejectError,
    SchemaInvalid,
    SealError,
    Stale,
    Undecryptable,
    UnknownSender,
    build_message,
    canonical,
    parse_envelope,
    utcnow,
)
from exchange._envelope import SIGNING_CONTEXT
from exchange.sandbox import Sandbox
from tests.support.bus import ALERT, LODGED, LOOKUP, LOOKUP_REPLY


def _mutate(data: bytes, path: tuple, value) -> bytes:
    doc = json.loads(data)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(doc).encode()


def test_request_round_trip(bus):
    """A granted request passes every step and yields its payload."""
    accepted = bus.inspector(bus.civil).inspect(bus.lookup())
    assert isinstance(accepted, Accepted)
    assert accepted.payload == {"cin": "AB123456"}
    assert accepted.envelope.header.sender == bus.tax.subsystem


def test_response_is_bound_to_its_request(bus):
    """A response names its request's digest; the asker accepts it under the provider's
    service declaration."""
    request = parse_envelope(bus.lookup())
    reply = bus.build(
        bus.civil,
        LOOKUP_REPLY,
        "response",
        b'{"found": false}',
        "INTERNAL",
        to=bus.tax,
        correlation_id=request.header.id,
        in_reply_to=request.digest,
    )
    accepted = bus.inspector(bus.tax).inspect(reply)
    assert accepted.envelope.header.in_reply_to == request.digest
    # the same response type from a subsystem that does not provide the service is refused
    forged = bus.build(
        bus.customs,
        LOOKUP_REPLY,
        "response",
        b'{"found": true}',
        "INTERNAL",
        to=bus.tax,
        in_reply_to=request.digest,
    )
    with pytest.raises(Forbidden, match="may not answer"):
        bus.inspector(bus.tax).inspect(forged)


def test_event_reaches_subscriber_only(bus):
    """An event is accepted by a subscriber and refused by a subsystem without the grant."""
    event = bus.build(bus.customs, LODGED, "event", b'{"declaration": "2026-0001"}', "INTERNAL")
    assert bus.inspector(bus.tax).inspect(event).payload == {"declaration": "2026-0001"}
    with pytest.raises(Forbidden, match="no subscription"):
        bus.inspector(bus.treasury).inspect(event)


def test_restricted_payload_is_encrypted_end_to_end(bus):
    """A RESTRICTED message carries no plaintext; only the recipient can open it."""
    data = bus.alert()
    assert b"MA64011519000001205000534921" not in data
    payload = base64.b64decode(json.loads(data)["payload"])
    assert b"MA6401" not in payload
    assert bus.inspector(bus.tax).inspect(data).payload["score"] == 97
    # the ciphertext under a header changed and re-signed by the sender does not open:
    # the header is the AEAD's associated data
    doc = json.loads(data)
    assert doc["header"]["encryption"]["kid"] in bus.tax.keys.decryption_keys()


def test_restricted_event_travels_as_one_encrypted_copy_per_subscriber(bus):
    """A RESTRICTED event goes to each subscriber encrypted to that subscriber; another
    subscriber cannot use that copy."""
    bus.sandbox.classify("civil.birth-registered", "RESTRICTED")
    bus.sandbox.publish(bus.civil, "civil.birth-registered")
    bus.sandbox.subscribe(bus.tax, "civil.birth-registered")
    bus.sandbox.subscribe(bus.treasury, "civil.birth-registered")
    copies = {
        party.subsystem: bus.build(
            bus.civil,
            "civil.birth-registered",
            "event",
            b'{"act_number": "1532/2026"}',
            "RESTRICTED",
            to=party,
        )
        for party in (bus.tax, bus.treasury)
    }
    for party in (bus.tax, bus.treasury):
        accepted = bus.inspector(party).inspect(copies[party.subsystem])
        assert accepted.payload == {"act_number": "1532/2026"}
    with pytest.raises(Forbidden, match="arrived at MA/GOV/MEF/TREASURY"):
        bus.inspector(bus.treasury).inspect(copies[bus.tax.subsystem])


def test_restricted_without_recipient_key_is_refused_at_the_source(bus):
    """The sender cannot build a RESTRICTED message without the recipient's key."""
    with pytest.raises(SealError, match="must be encrypted"):
        bus.build(bus.treasury, ALERT, "event", b"{}", "RESTRICTED")


# --------------------------------------------------------------------------- reject codes


def test_reject_malformed(bus):
    """Not JSON, too large, or missing header fields: malformed."""
    inspector = bus.inspector(bus.civil)
    with pytest.raises(Malformed, match="not valid UTF-8 JSON"):
        inspector.inspect(b"\xff{")
    with pytest.raises(Malformed, match="exceeds the limit"):
        bus.inspector(bus.civil, max_size=100).inspect(bus.lookup())
    doc = json.loads(bus.lookup())
    del doc["header"]["schema"]
    with pytest.raises(Malformed, match="missing \\['schema'\\]"):
        inspector.inspect(json.dumps(doc).encode())
    with pytest.raises(Malformed, match="'sender'"):
        inspector.inspect(_mutate(bus.lookup(), ("header", "sender"), "MA/GOV"))


def test_reject_unknown_sender(bus):
    """A signer certificate the directory does not list: unknown-sender."""
    stranger = Sandbox(ca=bus.sandbox.ca)
    party = stranger.add("MA/GOV/MEF/CUSTOMS2")
    data = bus.build(party, LOOKUP, "request", b'{"cin": "A1"}', "INTERNAL", to=bus.civil)
    with pytest.raises(UnknownSender, match="not in directory"):
        bus.inspector(bus.civil).inspect(data)


def test_reject_signature_by_another_agencys_key(bus):
    """A message claiming to be from tax but signed with customs' certificate: unknown-sender."""
    doc = json.loads(bus.lookup())
    doc["header"]["signer"] = bus.customs.signer.fingerprint
    with pytest.raises(UnknownSender, match="not a signing certificate of MA/GOV/MEF/TAX"):
        bus.inspector(bus.civil).inspect(json.dumps(doc).encode())


def test_reject_certificate_revoked(bus):
    """A message signed with a revoked certificate: certificate-revoked."""
    data = bus.lookup()
    bus.sandbox.revoke(bus.tax)
    with pytest.raises(CertificateRevoked, match="revoked"):
        bus.inspector(bus.civil).inspect(data)


def test_reject_certificate_expired_after_rotation_overlap(bus):
    """Old keys keep working during the rotation overlap and are refused after it."""
    old = bus.lookup()
    bus.sandbox.rotate(bus.tax, overlap=timedelta(minutes=5))
    assert bus.inspector(bus.civil).inspect(old).payload["cin"] == "AB123456"
    later = bus.inspector(bus.civil, clock=lambda: utcnow() + timedelta(minutes=6))
    with pytest.raises(CertificateExpired, match="valid from"):
        later.inspect(old)
    # the new generation signs and is accepted at that time
    fresh = bus.lookup(now=utcnow() + timedelta(minutes=6))
    assert later.inspect(fresh).envelope.header.signer == bus.tax.signer.fingerprint


def test_reject_bad_signature_and_digest(bus):
    """A changed header field or a changed payload: bad-signature."""
    inspector = bus.inspector(bus.civil)
    data = bus.lookup()
    forged_id = "0" * 32
    with pytest.raises(BadSignature, match="does not verify"):
        inspector.inspect(_mutate(data, ("header", "id"), forged_id))
    other_payload = base64.b64encode(b'{"cin": "ZZ999"}').decode()
    with pytest.raises(BadSignature, match="does not match its digest"):
        inspector.inspect(_mutate(data, ("payload",), other_payload))


def test_reject_stale_and_expired(bus):
    """Too old, from the future, or past expiry: stale or expired."""
    inspector = bus.inspector(bus.civil)
    with pytest.raises(Stale, match="more than 600 s ago"):
        inspector.inspect(bus.lookup(now=utcnow() - timedelta(minutes=11), ttl=timedelta(hours=1)))
    with pytest.raises(Stale, match="in the future"):
        inspector.inspect(bus.lookup(now=utcnow() + timedelta(minutes=2)))
    with pytest.raises(Expired, match="expired at"):
        inspector.inspect(
            bus.lookup(now=utcnow() - timedelta(minutes=2), ttl=timedelta(seconds=10))
        )


def test_reject_duplicate(bus):
    """The same message id twice: duplicate (the connector then resends its response)."""
    inspector = bus.inspector(bus.civil)
    data = bus.lookup()
    accepted = inspector.inspect(data)
    inspector.seen.add(accepted.envelope.header.id, inspector.keep_until(accepted.envelope))
    with pytest.raises(Duplicate, match="already received"):
        inspector.inspect(data)


def test_reject_forbidden(bus):
    """No grant, wrong recipient, or a downgraded classification: forbidden."""
    no_grant = bus.build(bus.customs, LOOKUP, "request", b'{"cin": "A1"}', "INTERNAL", to=bus.civil)
    with pytest.raises(Forbidden, match="no grant"):
        bus.inspector(bus.civil).inspect(no_grant)
    with pytest.raises(Forbidden, match="arrived at MA/GOV/MEF/TREASURY"):
        bus.inspector(bus.treasury).inspect(bus.lookup())
    downgraded = bus.build(bus.treasury, ALERT, "message", b"{}", "INTERNAL", to=bus.tax)
    with pytest.raises(Forbidden, match="is RESTRICTED"):
        bus.inspector(bus.tax).inspect(downgraded)


def test_reject_undecryptable(bus):
    """A payload for a key the receiver lacks, or an altered ciphertext: undecryptable."""
    data = bus.alert()
    inspector = bus.inspector(bus.tax)
    inspector.decryption_keys = {}
    with pytest.raises(Undecryptable, match="which this subsystem lacks"):
        inspector.inspect(data)


def test_reject_altered_ciphertext_is_undecryptable_when_resigned(bus):
    """A sender that re-signs a ciphertext under a different header cannot make it open."""
    good = json.loads(bus.alert())
    ciphertext = base64.b64decode(good["payload"])
    again = json.loads(bus.alert())  # same parties, fresh ephemeral key and header
    again_ct = base64.b64decode(again["payload"])
    assert ciphertext != again_ct
    flipped = bytearray(ciphertext)
    flipped[0] ^= 1
    # rebuild a validly signed envelope around the flipped ciphertext
    header = good["header"]
    header["payload_digest"] = "sha256:" + hashlib.sha256(bytes(flipped)).hexdigest()
    signature = bus.treasury.signer.key.sign(SIGNING_CONTEXT + canonical(header))
    doc = {
        "header": header,
        "payload": base64.b64encode(bytes(flipped)).decode(),
        "signature": base64.b64encode(signature).decode(),
    }
    with pytest.raises(Undecryptable, match="altered"):
        bus.inspector(bus.tax).inspect(json.dumps(doc).encode())


def test_reject_schema_invalid(bus):
    """A payload that breaks its schema: schema-invalid, with the JSON path of the error."""
    with pytest.raises(SchemaInvalid) as info:
        bus.inspector(bus.civil).inspect(bus.lookup({"name": "x"}))
    assert info.value.as_dict()["errors"] == [
        {"path": "$.cin", "message": "'cin' is a required string", "keyword": "required"}
    ]


def test_every_reject_code_has_a_named_error():
    """The wire codes are exactly the thirteen of the protocol."""
    assert REJECT_CODES == (
        "malformed",
        "unknown-sender",
        "certificate-revoked",
        "certificate-expired",
        "bad-signature",
        "stale",
        "expired",
        "duplicate",
        "forbidden",
        "purpose-mismatch",
        "grant-expired",
        "undecryptable",
        "schema-invalid",
    )


# --------------------------------------------------------------------------- properties


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_is_rejected(bus, position, bit):
    """Flipping any bit of a valid message never yields an accepted message."""
    data = bytearray(bus._cached if hasattr(bus, "_cached") else bus.lookup())
    bus._cached = bytes(data)
    index = position % len(data)
    data[index] ^= 1 << bit
    inspector = bus.inspector(bus.civil)
    try:
        inspector.inspect(bytes(data))
    except RejectError as exc:
        code = exc.code
    else:
        code = None
    assert code in REJECT_CODES or code is None
    if code is None:
        # JSON escapes can change bytes without changing the value (e.g. the case of a
        # \\u escape); then the message is the same message
        assert parse_envelope(bytes(data)).signed_bytes == parse_envelope(bus._cached).signed_bytes


@settings(max_examples=200)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_are_malformed_never_a_crash(data):
    """Random bytes are refused as malformed with a message, never an unexpected exception."""
    with pytest.raises(Malformed):
        parse_envelope(data)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(part=st.sampled_from(["signature", "payload"]), index=st.integers(0), bit=st.integers(0, 7))
def test_changed_signature_or_payload_bytes_are_bad_signature(bus, part, index, bit):
    """Any changed bit of the decoded signature or payload is refused as bad-signature."""
    doc = json.loads(bus.lookup())
    raw = bytearray(base64.b64decode(doc[part]))
    raw[index % len(raw)] ^= 1 << bit
    doc[part] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(BadSignature):
        bus.inspector(bus.civil).inspect(json.dumps(doc).encode())


HEADER_CHANGES = {
    "id": "f" * 32,
    "type": "civil.person-lookup.other",
    "schema": "1.0.1",
    "created": "2026-01-01T00:00:00.000Z",
    "correlation_id": "e" * 32,
    "classification": "SECRET",
    "payload_digest": "sha256:" + "0" * 64,
}


@pytest.mark.parametrize(("field", "value"), sorted(HEADER_CHANGES.items()))
def test_changed_header_field_is_bad_signature(bus, field, value):
    """Changing any signed header field to another well-formed value breaks the signature."""
    doc = json.loads(bus.lookup())
    doc["header"][field] = value
    if field == "created":
        doc["header"]["expires"] = "2026-01-01T00:01:00.000Z"
    with pytest.raises(BadSignature):
        bus.inspector(bus.civil).inspect(json.dumps(doc).encode())


def test_changed_sender_or_signer_is_unknown_sender(bus):
    """Claiming another sender, or another signer certificate, is refused as unknown-sender."""
    for field, value in (
        ("sender", str(bus.customs.subsystem)),
        ("signer", bus.customs.signer.fingerprint),
    ):
        doc = json.loads(bus.lookup())
        doc["header"][field] = value
        with pytest.raises(UnknownSender):
            bus.inspector(bus.civil).inspect(json.dumps(doc).encode())


@pytest.mark.parametrize("classification", ["INTERNAL", "RESTRICTED"])
def test_build_message_gives_the_envelope_its_bytes_parse_to(bus, classification):
    """The sender keeps the envelope it built instead of parsing its own bytes again: it is
    exactly what a receiver parses (header, payload as carried, signature, signed bytes)."""
    data, built = build_message(
        bus.treasury.signer,
        message_type=ALERT,
        schema_version="1.0.0",
        kind="message",
        payload=b'{"account": "MA64011519000001205000534921", "score": 97}',
        classification=classification,
        recipient=bus.sandbox.recipient(bus.tax),
    )
    parsed = parse_envelope(data)
    assert built == parsed
    assert built.digest == parsed.digest


def test_judge_carries_the_envelope_of_a_refused_message(bus):
    """A refused message's verdict names its reject error and, once the bytes parsed, the
    envelope; bytes that do not parse have none. inspect() raises the same error."""
    seen = MemorySeenStore()
    inspector = bus.inspector(bus.civil, seen=seen)
    data = bus.lookup()
    accepted = inspector.judge(data)
    assert isinstance(accepted, Accepted)
    seen.add(accepted.envelope.header.id, utcnow() + timedelta(minutes=10))
    again = inspector.judge(data)
    assert isinstance(again, Rejected)
    assert again.error.code == "duplicate"
    assert again.envelope == parse_envelope(data)
    garbled = inspector.judge(b"{not json")
    assert isinstance(garbled, Rejected)
    assert (garbled.error.code, garbled.envelope) == ("malformed", None)
    with pytest.raises(Malformed):
        inspector.inspect(b"{not json")
