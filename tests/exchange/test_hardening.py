"""Regression tests for the ways a message, directory or key file could be bent."""

import json
import stat
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from exchange import (
    CAStore,
    CertificateError,
    DirectoryExpiredError,
    Forbidden,
    KeyStore,
    KeyStoreError,
    Malformed,
    SubsystemId,
    inspect_certificate,
    issue_for,
    parse_envelope,
    parse_time,
    utcnow,
    write_private_key,
)
from tests.support.bus import ALERT

CUSTOMS = SubsystemId.parse("MA/GOV/MEF/CUSTOMS")


def test_classification_is_the_highest_of_all_versions(bus):
    """Listing a less classified version after a RESTRICTED one does not let a sender drop
    encryption."""
    bus.sandbox.classify(ALERT, "INTERNAL", version="0.9.0")
    plain = bus.build(bus.treasury, ALERT, "message", b"{}", "INTERNAL", to=bus.tax)
    with pytest.raises(Forbidden, match="is RESTRICTED"):
        bus.inspector(bus.tax).inspect(plain)


def test_expired_directory_stops_judgement(bus):
    """With an expired directory the inspector refuses to decide (revocations may be
    missing) instead of accepting messages."""
    inspector = bus.inspector(bus.civil, clock=lambda: utcnow() + timedelta(days=2))
    with pytest.raises(DirectoryExpiredError, match="refusing to judge"):
        inspector.inspect(bus.lookup(now=utcnow() + timedelta(days=2)))


def test_repeated_member_names_and_escapes_are_malformed(bus):
    """An envelope whose bytes could be read two ways (repeated names, escapes) is refused."""
    data = bus.lookup()
    repeated = b'{"header":{"v":1},' + data[1:]
    with pytest.raises(Malformed, match="repeated member names"):
        parse_envelope(repeated)
    inner = data.replace(b'"kind":"request"', b'"kind":"message","kind" : "request"')
    with pytest.raises(Malformed, match="repeated member names"):
        parse_envelope(inner)
    escaped = data.replace(b'"kind"', b'"\\u006bind"')
    with pytest.raises(Malformed, match="no backslash"):
        parse_envelope(escaped)


def test_header_strings_are_strict(bus):
    """A look-alike character in the algorithm, a non-wire timestamp or an endless expiry
    is malformed."""
    alert = json.loads(bus.alert())
    alert["header"]["encryption"]["alg"] = "X25519-H\u212aDF-SHA256-A256GCM"
    with pytest.raises(Malformed, match="'encryption'"):
        parse_envelope(json.dumps(alert, ensure_ascii=False).encode())
    for text in ("20261122T140000.000Z", "2026-11-22T14:00Z", "2026-11-22T14:00:00+00:00"):
        with pytest.raises(Malformed, match="UTC time like"):
            parse_time(text, "created")
    doc = json.loads(bus.lookup())
    doc["header"]["expires"] = "9999-12-31T23:59:59.999Z"
    with pytest.raises(Malformed, match="at most one day"):
        parse_envelope(json.dumps(doc).encode())


def test_error_reply_needs_a_provided_service(bus):
    """Only a provider may answer its caller with an error; a mere grant holder may not."""
    request = parse_envelope(bus.lookup())

    def error_from(party):
        return bus.build(
            party,
            "tabadul.error",
            "error",
            b'{"code": "forbidden", "message": "no"}',
            "INTERNAL",
            to=bus.tax,
            in_reply_to=request.digest,
        )

    bus.sandbox.grant(bus.tax, "customs.declaration-lodged", bus.customs)
    with pytest.raises(Forbidden, match="may not answer"):
        bus.inspector(bus.tax).inspect(error_from(bus.customs))
    assert bus.inspector(bus.tax).inspect(error_from(bus.civil)).envelope.header.kind == "error"


def test_key_file_is_private_even_over_a_leftover(tmp_path):
    """A stale world-readable temp file does not make the key file readable."""
    target = tmp_path / "signing.key"
    leftover = tmp_path / "signing.key.tmp"
    leftover.write_text("old")
    leftover.chmod(0o644)
    write_private_key(target, ed25519.Ed25519PrivateKey.generate(), b"pw")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_rotation_keeps_signing_until_the_new_keys_are_certified(tmp_path):
    """A generated but uncertified generation neither signs nor starts the old one's
    retirement."""
    ca = CAStore.init(tmp_path / "ca", "MA", b"p")
    keys = KeyStore(tmp_path / "k", b"s")
    keys.generate(CUSTOMS)
    first, _ = issue_for(ca, keys)
    keys.generate(CUSTOMS, overlap=timedelta(hours=1))
    ring = keys.load()
    assert ring.signer()[1] == first
    assert ring.generations[0].retire_after is None
    second, _ = issue_for(ca, keys)
    ring = keys.load()
    assert ring.signer()[1] == second
    assert ring.generations[0].retire_after is not None


def test_revoke_accepts_serial_with_leading_zeros(tmp_path):
    """`ca revoke 0x00ab..` finds the certificate whatever the zero padding."""
    ca = CAStore.init(tmp_path / "ca", "MA", b"p")
    keys = KeyStore(tmp_path / "k", b"s")
    keys.generate(CUSTOMS)
    signing, _ = issue_for(ca, keys)
    entry = ca.revoke(f"0x000{signing.serial_number:x}", "test")
    assert entry.serial == signing.serial_number


def test_certificate_without_key_usage_is_refused(bus):
    """A certificate from the right CA but without the subsystem extensions is refused."""
    key = ed25519.Ed25519PrivateKey.generate()
    now = utcnow()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(CUSTOMS))]))
        .issuer_name(bus.sandbox.ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(bus.sandbox.ca.key, None)
    )
    with pytest.raises(CertificateError, match="lacks a required extension"):
        inspect_certificate(cert, bus.sandbox.ca.certificate)


def test_wrong_passphrase_does_not_touch_keys(tmp_path):
    """Reading keys with a wrong passphrase fails cleanly."""
    keys = KeyStore(tmp_path / "k", b"right")
    keys.generate(CUSTOMS)
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        KeyStore(tmp_path / "k", b"wrong").load()
