"""The signed directory: the operator's snapshot of who is on the bus and what they may do.

Wire form (protocol.md, "Directory")::

    {"directory": BODY, "signer": "sha256:<CA certificate fingerprint>", "signature": "<base64>"}

The signature is Ed25519 by the root CA over ``b"tabadul/1 directory\\n" + canonical(BODY)``.
Loading checks the signature, the expiry, that the serial is not older than the one already
held, and every certificate in it against the CA.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from exchange._canonical import canonical
from exchange._errors import (
    CertificateError,
    DirectoryError,
    DirectoryExpiredError,
    DirectoryRollbackError,
    DirectorySignatureError,
    ExchangeError,
)
from exchange._identity import MemberId, SubsystemId
from exchange._pki import CertificateAuthority, CertInfo, cert_from_pem, cert_to_pem, fingerprint
from exchange._pki import inspect_certificate as _inspect
from exchange._time import format_time, parse_time, utcnow

DIRECTORY_CONTEXT = b"tabadul/1 directory\n"
CLASSIFICATIONS = ("PUBLIC", "INTERNAL", "RESTRICTED", "SECRET")
ENCRYPTED_CLASSIFICATIONS = frozenset({"RESTRICTED", "SECRET"})


@dataclass(frozen=True, slots=True)
class CertEntry:
    """A certificate as the directory lists it. ``not_after`` is the effective end: the
    certificate's own, or earlier when the key was rotated (``retire_after``)."""

    info: CertInfo
    not_after: datetime
    revoked: bool
    pem: str


@dataclass(frozen=True, slots=True)
class Service:
    subsystem: SubsystemId
    message_type: str
    role: Literal["provides", "publishes", "accepts"]
    response_type: str | None = None


UNSPECIFIED_PURPOSE = "unspecified"
"""The purpose of a grant made before purposes were recorded, and the purpose a request
states when its header names none (a sender of protocol 1.0)."""
PURPOSE = re.compile(r"[a-z][a-z0-9-]{0,63}\Z")
"""A purpose is a short code, e.g. ``tax-compliance-check``."""


@dataclass(frozen=True, slots=True)
class LegalBasis:
    """Why a grant is lawful: the text people read and a citable ``reference`` (a law's
    article, a decree's number, a URL)."""

    text: str = ""
    reference: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"text": self.text, "reference": self.reference}


@dataclass(frozen=True, slots=True)
class SendGrant:
    """``sender`` may send ``message_type`` to ``recipient``, for ``purpose`` on
    ``legal_basis``, until ``expires`` (``None``: no end)."""

    sender: SubsystemId
    message_type: str
    recipient: SubsystemId
    purpose: str = UNSPECIFIED_PURPOSE
    legal_basis: LegalBasis = field(default_factory=LegalBasis)
    expires: datetime | None = None

    def live(self, at: datetime) -> bool:
        """Whether the grant is in force at ``at``."""
        return self.expires is None or at < self.expires


@dataclass(frozen=True, slots=True)
class SubscribeGrant:
    """``subscriber`` may receive the events of ``topic`` (a message type), for
    ``purpose`` on ``legal_basis``, until ``expires`` (``None``: no end)."""

    subscriber: SubsystemId
    topic: str
    purpose: str = UNSPECIFIED_PURPOSE
    legal_basis: LegalBasis = field(default_factory=LegalBasis)
    expires: datetime | None = None

    def live(self, at: datetime) -> bool:
        """Whether the subscription is in force at ``at``."""
        return self.expires is None or at < self.expires


@dataclass(frozen=True, slots=True)
class SchemaRef:
    message_type: str
    version: str
    digest: str
    classification: str


@dataclass(slots=True)
class Directory:
    """A verified directory snapshot, indexed for the receive pipeline."""

    serial: int
    instance: str
    issued: datetime
    expires: datetime
    ca_fingerprint: str
    members: dict[MemberId, str]
    certificates: dict[str, CertEntry]
    services: tuple[Service, ...]
    send_grants: frozenset[SendGrant]
    subscribe_grants: frozenset[SubscribeGrant]
    schemas: dict[tuple[str, str], SchemaRef]
    revoked_serials: frozenset[int]
    raw: bytes = b""
    _by_subsystem: dict[tuple[SubsystemId, str], list[CertEntry]] = field(default_factory=dict)
    _classification: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for entry in self.certificates.values():
            key = (entry.info.subsystem, entry.info.usage)
            self._by_subsystem.setdefault(key, []).append(entry)
        for group in self._by_subsystem.values():
            group.sort(key=lambda e: e.info.not_before)
        for ref in self.schemas.values():
            # a type is as classified as its most classified version
            known = self._classification.get(ref.message_type, CLASSIFICATIONS[0])
            level = max(CLASSIFICATIONS.index(known), CLASSIFICATIONS.index(ref.classification))
            self._classification[ref.message_type] = CLASSIFICATIONS[level]

    def certificate(self, fp: str) -> CertEntry | None:
        return self.certificates.get(fp)

    def encryption_certificate(self, subsystem: SubsystemId, at: datetime) -> CertEntry | None:
        """The newest usable encryption certificate of ``subsystem`` at ``at``."""
        usable = [
            entry
            for entry in self._by_subsystem.get((subsystem, "encryption"), [])
            if not entry.revoked and entry.info.not_before <= at < entry.not_after
        ]
        return usable[-1] if usable else None

    def signing_certificates(self, subsystem: SubsystemId) -> list[CertEntry]:
        """The signing certificates of ``subsystem`` the directory lists (revoked ones too:
        what was signed before a revocation still names its signer), oldest first."""
        return list(self._by_subsystem.get((subsystem, "signing"), []))

    def classification_of(self, message_type: str) -> str | None:
        return self._classification.get(message_type)

    def subscribers(self, topic: str, at: datetime | None = None) -> list[SubsystemId]:
        """Who holds a subscription to ``topic`` in force at ``at`` (default: now)."""
        moment = at or utcnow()
        return sorted(
            {g.subscriber for g in self.subscribe_grants if g.topic == topic and g.live(moment)}
        )

    def grants_for(
        self, sender: SubsystemId, message_type: str, recipient: SubsystemId
    ) -> list[SendGrant]:
        """Every grant (any purpose, in force or not) for this sender, type and recipient."""
        return sorted(
            (
                g
                for g in self.send_grants
                if g.sender == sender
                and g.message_type == message_type
                and g.recipient == recipient
            ),
            key=lambda g: g.purpose,
        )

    def subsystems(self) -> list[SubsystemId]:
        return sorted({entry.info.subsystem for entry in self.certificates.values()})

    def is_stale(self, now: datetime | None = None) -> bool:
        return (now or utcnow()) >= self.expires


# --------------------------------------------------------------------------- building


@dataclass(slots=True)
class DirectoryDraft:
    """What the operator puts into a directory before signing it (governance fills it)."""

    instance: str
    serial: int
    members: dict[str, str] = field(default_factory=dict)
    certificates: list[tuple[x509.Certificate, datetime | None]] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    send_grants: list[SendGrant] = field(default_factory=list)
    subscribe_grants: list[SubscribeGrant] = field(default_factory=list)
    schemas: list[SchemaRef] = field(default_factory=list)
    revoked_serials: list[int] = field(default_factory=list)

    def body(self, issued: datetime, expires: datetime, ca_fingerprint: str) -> dict[str, Any]:
        return {
            "v": 1,
            "instance": self.instance,
            "serial": self.serial,
            "issued": format_time(issued),
            "expires": format_time(expires),
            "ca": ca_fingerprint,
            "members": [{"id": k, "name": v} for k, v in sorted(self.members.items())],
            "certificates": [
                {
                    "pem": cert_to_pem(cert),
                    "retire_after": format_time(retire) if retire else None,
                }
                for cert, retire in self.certificates
            ],
            "services": [
                {
                    "subsystem": str(s.subsystem),
                    "type": s.message_type,
                    "role": s.role,
                    "response_type": s.response_type,
                }
                for s in self.services
            ],
            "grants": sorted(
                (
                    {
                        "sender": str(g.sender),
                        "type": g.message_type,
                        "recipient": str(g.recipient),
                        **_terms(g.purpose, g.legal_basis, g.expires),
                    }
                    for g in self.send_grants
                ),
                key=lambda g: (g["sender"], g["type"], g["recipient"], g["purpose"]),
            ),
            "subscriptions": sorted(
                (
                    {
                        "subscriber": str(g.subscriber),
                        "topic": g.topic,
                        **_terms(g.purpose, g.legal_basis, g.expires),
                    }
                    for g in self.subscribe_grants
                ),
                key=lambda g: (g["subscriber"], g["topic"]),
            ),
            "schemas": [
                {
                    "type": s.message_type,
                    "version": s.version,
                    "digest": s.digest,
                    "classification": s.classification,
                }
                for s in self.schemas
            ],
            "revoked": sorted(f"{serial:x}" for serial in self.revoked_serials),
        }


def _terms(purpose: str, basis: LegalBasis, expires: datetime | None) -> dict[str, Any]:
    """A grant's purpose, legal basis and expiry as directory members."""
    return {
        "purpose": purpose,
        "legal_basis": basis.as_dict(),
        "expires": format_time(expires) if expires is not None else None,
    }


def sign_directory(
    draft: DirectoryDraft,
    ca: CertificateAuthority,
    *,
    issued: datetime | None = None,
    expires: datetime,
) -> bytes:
    """The signed directory document, as bytes ready to publish."""
    start = issued or utcnow()
    body = draft.body(start, expires, ca.fingerprint)
    signature = ca.key.sign(DIRECTORY_CONTEXT + canonical(body))
    document = {
        "directory": body,
        "signer": ca.fingerprint,
        "signature": base64.b64encode(signature).decode("ascii"),
    }
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")


# --------------------------------------------------------------------------- loading


def _field(body: Mapping[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
        raise DirectoryError(f"directory field {name!r} must be a {kind.__name__}")
    return value


ROLES = ("provides", "publishes", "accepts")


def _one_of(value: Any, allowed: tuple[str, ...], what: str) -> Any:
    if value not in allowed:
        raise DirectoryError(f"unknown {what} {value!r}; expected one of {list(allowed)}")
    return value


def _subsystem(text: object, where: str) -> SubsystemId:
    try:
        return SubsystemId.parse(str(text))
    except ExchangeError as exc:
        raise DirectoryError(f"{where}: {exc.message}") from exc


def _read_terms(entry: Mapping[str, Any], where: str) -> tuple[str, LegalBasis, datetime | None]:
    """A grant's purpose, legal basis and expiry; a directory of protocol 1.0 has none of
    them (the grant is then for the unspecified purpose, with no recorded basis, for ever)."""
    purpose = entry.get("purpose", UNSPECIFIED_PURPOSE)
    if not isinstance(purpose, str) or not PURPOSE.match(purpose):
        raise DirectoryError(f"{where}: purpose {purpose!r} is not a purpose code")
    basis = entry.get("legal_basis") or {}
    if not isinstance(basis, dict) or not all(
        isinstance(basis.get(k, ""), str) for k in ("text", "reference")
    ):
        raise DirectoryError(f"{where}: legal_basis must be {{text, reference}} strings")
    expires = entry.get("expires")
    return (
        purpose,
        LegalBasis(basis.get("text", ""), basis.get("reference", "")),
        None if expires is None else parse_time(expires, f"{where} expires"),
    )


def load_directory(
    data: bytes,
    ca_certificate: x509.Certificate,
    *,
    now: datetime | None = None,
    held_serial: int | None = None,
    allow_expired: bool = False,
) -> Directory:
    """Verify and index a signed directory.

    Raises :class:`DirectorySignatureError` when the CA's signature does not verify,
    :class:`DirectoryExpiredError` past its expiry, :class:`DirectoryRollbackError` when its
    serial is older than ``held_serial``, and :class:`DirectoryError` for anything malformed.
    """
    try:
        document = orjson.loads(data)
        body = document["directory"]
        signature = base64.b64decode(document["signature"], validate=True)
    except (orjson.JSONDecodeError, KeyError, TypeError, binascii.Error) as exc:
        raise DirectoryError(f"not a signed directory document: {exc}") from exc
    if not isinstance(body, dict):
        raise DirectoryError("the directory body must be a JSON object")
    ca_key = ca_certificate.public_key()
    if not isinstance(ca_key, ed25519.Ed25519PublicKey):
        raise DirectoryError("the CA certificate must hold an Ed25519 key")
    try:
        ca_key.verify(signature, DIRECTORY_CONTEXT + canonical(body))
    except ExchangeError as exc:  # no canonical form: it cannot have been signed
        raise DirectorySignatureError(f"the directory body is not signable: {exc}") from exc
    except InvalidSignature as exc:
        raise DirectorySignatureError(
            "the directory's signature does not verify against the CA certificate"
        ) from exc

    if _field(body, "v", int) != 1:
        raise DirectoryError(f"unsupported directory version {body.get('v')!r}")
    if body.get("ca") != fingerprint(ca_certificate) or document.get("signer") != body.get("ca"):
        raise DirectoryError("the directory names another CA than the one that signed it")
    serial = _field(body, "serial", int)
    expires = parse_time(body.get("expires"), "directory expires")
    moment = now or utcnow()
    if moment >= expires and not allow_expired:
        raise DirectoryExpiredError(f"directory serial {serial} expired at {format_time(expires)}")
    if held_serial is not None and serial < held_serial:
        raise DirectoryRollbackError(
            f"directory serial {serial} is older than the one already held ({held_serial})"
        )
    try:
        return _index(body, serial, expires, ca_certificate, data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DirectoryError(f"malformed directory entry: {exc!r}") from exc
    except ExchangeError as exc:
        if isinstance(exc, DirectoryError):
            raise
        raise DirectoryError(f"malformed directory entry: {exc.message}") from exc


def _index(
    body: dict[str, Any], serial: int, expires: datetime, ca_cert: x509.Certificate, raw: bytes
) -> Directory:
    revoked = frozenset(int(s, 16) for s in _field(body, "revoked", list))
    certificates: dict[str, CertEntry] = {}
    for item in _field(body, "certificates", list):
        cert = cert_from_pem(item["pem"])
        try:
            info = _inspect(cert, ca_cert)
        except CertificateError as exc:
            raise DirectoryError(f"directory lists a bad certificate: {exc.message}") from exc
        retire = item.get("retire_after")
        not_after = info.not_after
        if retire:
            not_after = min(not_after, parse_time(retire, "retire_after"))
        certificates[fingerprint(cert)] = CertEntry(
            info=info, not_after=not_after, revoked=info.serial in revoked, pem=item["pem"]
        )
    services = tuple(
        Service(
            subsystem=_subsystem(s["subsystem"], "service"),
            message_type=s["type"],
            role=_one_of(s["role"], ROLES, "service role"),
            response_type=s.get("response_type"),
        )
        for s in _field(body, "services", list)
    )
    send = frozenset(
        SendGrant(
            _subsystem(g["sender"], "grant"),
            g["type"],
            _subsystem(g["recipient"], "grant"),
            *_read_terms(g, "grant"),
        )
        for g in _field(body, "grants", list)
    )
    subscribe = frozenset(
        SubscribeGrant(
            _subsystem(g["subscriber"], "subscription"), g["topic"], *_read_terms(g, "subscription")
        )
        for g in _field(body, "subscriptions", list)
    )
    schemas = {
        (s["type"], s["version"]): SchemaRef(
            s["type"],
            s["version"],
            s["digest"],
            _one_of(s["classification"], CLASSIFICATIONS, "classification"),
        )
        for s in _field(body, "schemas", list)
    }
    members = {MemberId.parse(str(m["id"])): m["name"] for m in _field(body, "members", list)}
    return Directory(
        serial=serial,
        instance=_field(body, "instance", str),
        issued=parse_time(body.get("issued"), "directory issued"),
        expires=expires,
        ca_fingerprint=_field(body, "ca", str),
        members=members,
        certificates=certificates,
        services=services,
        send_grants=send,
        subscribe_grants=subscribe,
        schemas=schemas,
        revoked_serials=revoked,
        raw=raw,
    )
