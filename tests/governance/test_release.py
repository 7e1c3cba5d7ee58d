"""Signed releases: a release verifies with the CA certificate alone; any change to a field,
the signature or the certificate, another CA, an encryption certificate, a certificate not
valid at the release's time, or a malformed document is refused with its code."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from exchange import CertificateAuthority, SubsystemId, cert_to_pem, utcnow
from governance import AuditSigner
from governance._release import (
    ReleaseError,
    ReleaseFile,
    ReleaseForged,
    ReleaseUntrusted,
    new_release,
    sign_release,
    verify_release,
)

REGISTRY = SubsystemId.parse("MA/GOV/DNUM/REGISTRY")
DIGEST = "ab" * 32


@pytest.fixture
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("MA")


def _signer(ca: CertificateAuthority, **issue) -> AuditSigner:
    key = ed25519.Ed25519PrivateKey.generate()
    return AuditSigner(REGISTRY, key, ca.issue(REGISTRY, key.public_key(), **issue))


def _release(**changes):
    fields = {
        "dataset_id": "dec-grants-2025",
        "package": "dec-grants-2025",
        "version": 2,
        "files": [ReleaseFile("data.csv", 120, DIGEST), ReleaseFile("schema.json", 80, "cd" * 32)],
        "schema_sha256": "cd" * 32,
        "approval": "review:17",
        "approvers": ["karim"],
    }
    return new_release(**{**fields, **changes})


def test_a_signed_release_verifies_with_the_ca_certificate_alone(ca):
    release = _release()
    signed = verify_release(sign_release(release, _signer(ca)), ca.certificate)
    assert signed.release == release
    assert signed.signer == str(REGISTRY)
    assert signed.release.file("data.csv") == ReleaseFile("data.csv", 120, DIGEST)
    assert signed.as_dict()["approvers"] == ["karim"]


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("version", 3),
        ("dataset_id", "other"),
        ("approvers", ["mallory"]),
        ("files", [{"name": "data.csv", "size": 120, "sha256": "ee" * 32}]),
    ],
)
def test_a_changed_field_is_forged(ca, member, value):
    document = json.loads(sign_release(_release(), _signer(ca)))
    document["release"][member] = value
    with pytest.raises(ReleaseForged) as refused:
        verify_release(json.dumps(document).encode(), ca.certificate)
    assert refused.value.code == "release-forged"


def test_another_key_or_ca_or_certificate_is_untrusted(ca):
    data = sign_release(_release(), _signer(ca))
    other = CertificateAuthority.create("MA")
    with pytest.raises(ReleaseUntrusted):
        verify_release(data, other.certificate)
    document = json.loads(data)
    # a valid signature by a key the other CA certified is still not this CA's
    resigned = json.loads(sign_release(_release(), _signer(other)))
    with pytest.raises(ReleaseUntrusted):
        verify_release(json.dumps(resigned).encode(), ca.certificate)
    # the certificate swapped for another subsystem's of the same CA
    tax = SubsystemId.parse("MA/GOV/MEF/TAX")
    document["certificate"] = cert_to_pem(
        ca.issue(tax, ed25519.Ed25519PrivateKey.generate().public_key())
    )
    with pytest.raises(ReleaseUntrusted):
        verify_release(json.dumps(document).encode(), ca.certificate)
    # an encryption certificate of the signer
    document["certificate"] = cert_to_pem(
        ca.issue(REGISTRY, x25519.X25519PrivateKey.generate().public_key())
    )
    with pytest.raises(ReleaseUntrusted):
        verify_release(json.dumps(document).encode(), ca.certificate)


def test_a_release_made_outside_its_certificates_validity_is_untrusted(ca):
    later = utcnow() + timedelta(days=400)
    data = sign_release(_release(at=later), _signer(ca, days=30))
    with pytest.raises(ReleaseUntrusted) as refused:
        verify_release(data, ca.certificate)
    assert "not valid at" in refused.value.message


@pytest.mark.parametrize(
    "mangle",
    [
        lambda _d: b"not json",
        lambda d: json.dumps({**d, "extra": 1}).encode(),
        lambda d: json.dumps({**d, "signature": "***"}).encode(),
        lambda d: json.dumps({**d, "release": {**d["release"], "v": 2}}).encode(),
        lambda d: json.dumps({**d, "release": {**d["release"], "version": "2"}}).encode(),
        lambda d: json.dumps({**d, "release": {**d["release"], "files": []}}).encode(),
        lambda d: json.dumps(
            {
                **d,
                "release": {
                    **d["release"],
                    "files": [{"name": "../x", "size": 1, "sha256": DIGEST}],
                },
            }
        ).encode(),
        lambda d: json.dumps(
            {**d, "release": {**d["release"], "published_at": "yesterday"}}
        ).encode(),
        lambda d: json.dumps({**d, "certificate": "not a certificate"}).encode(),
    ],
)
def test_a_malformed_release_is_refused_with_a_code(ca, mangle):
    document = json.loads(sign_release(_release(), _signer(ca)))
    with pytest.raises(ReleaseError) as refused:
        verify_release(mangle(document), ca.certificate)
    assert refused.value.code in {"release-invalid", "release-untrusted"}


def test_the_signature_is_over_the_context_and_the_canonical_release(ca):
    """What a third party checks (docs/operations.md): Ed25519 over the context line and
    the RFC 8785 bytes of the release, with the key of the embedded certificate."""
    document = json.loads(sign_release(_release(), _signer(ca)))
    certificate = x509.load_pem_x509_certificate(document["certificate"].encode())
    certificate.verify_directly_issued_by(ca.certificate)
    certificate.public_key().verify(
        base64.b64decode(document["signature"]),
        b"tabadul/release/1\n" + rfc8785.dumps(document["release"]),
    )
