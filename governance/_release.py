"""Signed releases of open data: what a publication is, signed with a key certified by the bus
CA, so that a consumer trusts the bytes and not the portal that serves them.

A release names the dataset, the portal's package and version, every published file with its
size and SHA-256, the Table Schema's SHA-256, the approval it went out under and who
approved, and when. It is signed by the governance publishing key (the subsystem key that
also signs the audit log's heads, :class:`governance.AuditSigner`). The document, published as
``release.json`` beside the files::

    {"release": {...the fields...}, "signer": "MA/GOV/DNUM/REGISTRY",
     "certificate": "-----BEGIN CERTIFICATE-----...", "signature": "<base64>"}

``signature`` is Ed25519 over ``b"tabadul/release/1\\n"`` followed by the RFC 8785 canonical
bytes of ``release``. Verifying needs the CA certificate alone: the certificate was issued by
the CA to ``signer``, is a signing certificate, was valid when the release says it was made,
and its key made the signature (docs/operations.md shows how without Tabadul).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from exchange import (
    CertificateError,
    ExchangeError,
    canonical,
    cert_from_pem,
    cert_to_pem,
    format_time,
    inspect_certificate,
    parse_time,
    utcnow,
)
from governance._audit import AuditSigner
from governance._errors import GovernanceError

RELEASE_FILE = "release.json"
RELEASE_FORMAT = 1
CONTEXT = b"tabadul/release/1\n"
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_FIELDS = {
    "v",
    "dataset_id",
    "package",
    "version",
    "files",
    "schema_sha256",
    "approval",
    "approvers",
    "published_at",
}


class ReleaseError(GovernanceError):
    """A release document that cannot be trusted; ``code`` says why."""

    code = "release-invalid"


class ReleaseUntrusted(ReleaseError):
    """Its certificate is not the CA's signing certificate of its signer, or was not valid
    when the release was made."""

    code = "release-untrusted"


class ReleaseForged(ReleaseError):
    """The signature does not verify: the release was changed after it was signed."""

    code = "release-forged"


@dataclass(frozen=True, slots=True)
class ReleaseFile:
    name: str
    size: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True, slots=True)
class Release:
    """One publication of a dataset, as signed."""

    dataset_id: str
    package: str
    version: int
    files: tuple[ReleaseFile, ...]
    schema_sha256: str
    approval: str
    approvers: tuple[str, ...]
    published_at: str

    def fields(self) -> dict[str, Any]:
        return {
            "v": RELEASE_FORMAT,
            "dataset_id": self.dataset_id,
            "package": self.package,
            "version": self.version,
            "files": [f.as_dict() for f in self.files],
            "schema_sha256": self.schema_sha256,
            "approval": self.approval,
            "approvers": list(self.approvers),
            "published_at": self.published_at,
        }

    def file(self, name: str) -> ReleaseFile | None:
        return next((f for f in self.files if f.name == name), None)


@dataclass(frozen=True, slots=True)
class SignedRelease:
    """A release whose signature and certificate checked out."""

    release: Release
    signer: str
    certificate_fingerprint: str

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.release.fields(),
            "signer": self.signer,
            "certificate": self.certificate_fingerprint,
        }


def new_release(  # noqa: PLR0913 - keyword-only: the release's fields
    *,
    dataset_id: str,
    package: str,
    version: int,
    files: Sequence[ReleaseFile],
    schema_sha256: str,
    approval: str,
    approvers: Sequence[str],
    at: datetime | None = None,
) -> Release:
    return Release(
        dataset_id,
        package,
        version,
        tuple(files),
        schema_sha256,
        approval,
        tuple(approvers),
        format_time(at or utcnow()),
    )


def sign_release(release: Release, signer: AuditSigner) -> bytes:
    """The signed release document (UTF-8 JSON)."""
    fields = release.fields()
    signature = signer.key.sign(CONTEXT + canonical(fields))
    document = {
        "release": fields,
        "signer": str(signer.subsystem),
        "certificate": cert_to_pem(signer.certificate),
        "signature": base64.b64encode(signature).decode(),
    }
    return json.dumps(document, ensure_ascii=False, indent=2).encode()


def verify_release(data: bytes, ca_certificate: x509.Certificate) -> SignedRelease:
    """The release ``data`` states, once its certificate and signature check out against
    ``ca_certificate``. Raises :class:`ReleaseError` (malformed), :class:`ReleaseUntrusted`
    or :class:`ReleaseForged`."""
    document = _document(data)
    fields = document["release"]
    release = _release(fields)
    try:
        certificate = cert_from_pem(document["certificate"])
        info = inspect_certificate(certificate, ca_certificate)
    except CertificateError as exc:
        raise ReleaseUntrusted(f"the release's certificate: {exc.message}") from exc
    if str(info.subsystem) != document["signer"] or info.usage != "signing":
        raise ReleaseUntrusted(
            f"the release's certificate is not a signing certificate of {document['signer']}"
        )
    made = parse_time(release.published_at, "published_at")
    if not info.not_before <= made <= info.not_after:
        raise ReleaseUntrusted(
            f"the release's certificate was not valid at {release.published_at} "
            f"({format_time(info.not_before)} to {format_time(info.not_after)})"
        )
    key = certificate.public_key()
    assert isinstance(key, Ed25519PublicKey)  # a signing certificate (checked above)
    try:
        key.verify(document["signature_bytes"], CONTEXT + canonical(fields))
    except InvalidSignature as exc:
        raise ReleaseForged(
            "the release's signature does not verify: it was changed after it was signed"
        ) from exc
    return SignedRelease(release, document["signer"], info.fingerprint)


def _document(data: bytes) -> dict[str, Any]:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReleaseError(f"{RELEASE_FILE} is not JSON: {exc}") from exc
    if not isinstance(document, dict) or set(document) != {
        "release",
        "signer",
        "certificate",
        "signature",
    }:
        raise ReleaseError(
            f"{RELEASE_FILE} is an object of exactly release, signer, certificate, signature"
        )
    if not all(isinstance(document[k], str) for k in ("signer", "certificate", "signature")):
        raise ReleaseError("signer, certificate and signature are strings")
    try:
        document["signature_bytes"] = base64.b64decode(document["signature"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ReleaseError("the signature is not base64") from exc
    return document


def _release(fields: object) -> Release:
    """The release's fields, checked for shape (before the signature is: nothing here is
    trusted yet, but it must be readable)."""
    if not isinstance(fields, Mapping) or set(fields) != _FIELDS:
        raise ReleaseError(f"a release has exactly the fields {', '.join(sorted(_FIELDS))}")
    if fields["v"] != RELEASE_FORMAT:
        raise ReleaseError(f"release format {fields['v']!r} is not {RELEASE_FORMAT}")
    texts = ("dataset_id", "package", "schema_sha256", "approval", "published_at")
    if not all(isinstance(fields[k], str) for k in texts):
        raise ReleaseError(f"{', '.join(texts)} are strings")
    version = fields["version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ReleaseError("the version is a whole number from 1")
    approvers = fields["approvers"]
    if not isinstance(approvers, list) or not all(isinstance(a, str) for a in approvers):
        raise ReleaseError("approvers is a list of user ids")
    try:
        parse_time(fields["published_at"], "published_at")
    except ExchangeError as exc:
        raise ReleaseError(f"the release's {exc.message}") from exc
    return Release(
        fields["dataset_id"],
        fields["package"],
        version,
        tuple(_file(f) for f in _listed(fields["files"])),
        fields["schema_sha256"],
        fields["approval"],
        tuple(approvers),
        fields["published_at"],
    )


def _listed(files: object) -> list[Any]:
    if not isinstance(files, list) or not files:
        raise ReleaseError("files is a non-empty list")
    return files


def _file(entry: object) -> ReleaseFile:
    if not isinstance(entry, Mapping) or set(entry) != {"name", "size", "sha256"}:
        raise ReleaseError("each file has exactly name, size and sha256")
    name, size, digest = entry["name"], entry["size"], entry["sha256"]
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise ReleaseError(f"file name {name!r} is not a plain file name")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ReleaseError(f"the size of {name} is not a byte count")
    if not isinstance(digest, str) or not _SHA256.match(digest):
        raise ReleaseError(f"the SHA-256 of {name} is not 64 hex digits")
    return ReleaseFile(name, size, digest)


__all__ = [
    "RELEASE_FILE",
    "Release",
    "ReleaseError",
    "ReleaseFile",
    "ReleaseForged",
    "ReleaseUntrusted",
    "SignedRelease",
    "new_release",
    "sign_release",
    "verify_release",
]
