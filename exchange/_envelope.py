"""The envelope: a signed header, a payload, a signature (protocol.md, "Envelope").

Wire form, UTF-8 JSON::

    {"header": {...}, "payload": "<base64 of the payload bytes>", "signature": "<base64>"}

The signature is Ed25519 over ``b"tabadul/1 envelope\\n" + canonical(header)``; the header
binds the payload through ``payload_digest`` (SHA-256 of the payload bytes as carried, i.e.
of the ciphertext when encrypted). A message's *digest* is ``sha256:`` + SHA-256 of the
canonical header: it names the whole signed message, and a response carries its request's
digest in ``in_reply_to``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal

import orjson
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from exchange._canonical import canonical, canonical_flat
from exchange._directory import CLASSIFICATIONS, ENCRYPTED_CLASSIFICATIONS, PURPOSE
from exchange._errors import Malformed, SealError
from exchange._identity import SubsystemId
from exchange._pki import fingerprint
from exchange._seal import ALGORITHM, encryption_info, seal
from exchange._time import format_time, parse_time, utcnow

PROTOCOL_VERSION: Final = 1
SIGNING_CONTEXT: Final = b"tabadul/1 envelope\n"
DEFAULT_MAX_SIZE: Final = 1024 * 1024
Kind = Literal["request", "response", "event", "message", "error", "receipt"]
KINDS: Final = ("request", "response", "event", "message", "error", "receipt")
ERROR_TYPE: Final = "tabadul.error"
RECEIPT_TYPE: Final = "tabadul.receipt"  # the type of every receipt (protocol.md 1.2, §12)

_TYPE = re.compile(r"[a-z][a-z0-9-]*(?:\.[a-z][a-z0-9-]*)+\Z")
_SEMVER = re.compile(r"(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})\Z")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")
_ID = re.compile(r"[0-9a-f]{32}\Z")
_EPK = re.compile(r"[A-Za-z0-9+/]{43}=\Z")
MAX_TTL: Final = timedelta(days=1)
_FIELDS: Final = frozenset(
    {
        "v", "id", "type", "schema", "kind", "sender", "recipient", "topic", "created",
        "expires", "correlation_id", "in_reply_to", "classification", "payload_digest",
        "encryption", "signer",
    }
)  # fmt: skip
# Members a header may leave out (protocol 1.1 added them; a 1.0 header has none)
_OPTIONAL: Final = frozenset({"purpose"})
_PURPOSE_KINDS: Final = frozenset({"request", "message"})


@dataclass(frozen=True, slots=True)
class Header:
    """A parsed, well-formed header. ``raw`` is the JSON object it came from (what is signed)."""

    id: str
    type: str
    schema: str
    kind: Kind
    sender: SubsystemId
    recipient: SubsystemId | None
    topic: str | None
    created: datetime
    expires: datetime
    correlation_id: str | None
    in_reply_to: str | None
    classification: str
    payload_digest: str
    encryption: dict[str, str] | None
    signer: str
    raw: dict[str, Any]
    purpose: str | None = None


@dataclass(frozen=True, slots=True)
class Envelope:
    """A parsed envelope: well-formed, not yet verified."""

    header: Header
    payload: bytes
    signature: bytes
    signed_bytes: bytes

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of the canonical header: the message's name for ``in_reply_to``."""
        return "sha256:" + hashlib.sha256(self.signed_bytes).hexdigest()

    def digest_matches(self) -> bool:
        return "sha256:" + hashlib.sha256(self.payload).hexdigest() == self.header.payload_digest


def associated_data(raw_header: dict[str, Any]) -> bytes:
    """The AEAD associated data: the canonical header without its ``payload_digest``."""
    return canonical({k: v for k, v in raw_header.items() if k != "payload_digest"})


# --------------------------------------------------------------------------- parsing


# (field, pattern, required): the string fields of a header and their shapes
_STRING_FIELDS: Final = (
    ("id", _ID, True),
    ("type", _TYPE, True),
    ("schema", _SEMVER, True),
    ("payload_digest", _DIGEST, True),
    ("signer", _DIGEST, True),
    ("topic", _TYPE, False),
    ("correlation_id", _ID, False),
    ("in_reply_to", _DIGEST, False),
)


def _check_strings(raw: dict[str, Any]) -> None:
    for name, pattern, required in _STRING_FIELDS:
        value = raw[name]
        if value is None and not required:
            continue
        if value.__class__ is not str or not pattern.match(value):
            raise Malformed(f"header field {name!r} is missing or invalid: {value!r}")


def _subsystem(value: Any, name: str) -> SubsystemId:
    try:
        return SubsystemId.parse(value)
    except Exception as exc:  # IdentityError, with the details of what is wrong
        raise Malformed(f"header field {name!r}: {exc}") from exc


def _check_kind(raw: dict[str, Any], kind: str) -> None:
    """The members whose presence depends on the kind."""
    if kind == "event":
        # recipient null: one copy for every subscriber; set: an encrypted copy for one
        if raw["topic"] != raw["type"]:
            raise Malformed("an event's topic is its type")
    elif raw["topic"] is not None or raw["recipient"] is None:
        raise Malformed(f"a {kind} has a recipient and no topic")
    if (kind == "receipt") != (raw["type"] == RECEIPT_TYPE):
        raise Malformed(f"a receipt, and only a receipt, is of type {RECEIPT_TYPE}")
    if (kind in ("response", "error")) != (raw["in_reply_to"] is not None):
        raise Malformed("'in_reply_to' is required for responses and errors, and only there")


def parse_header(raw: Any) -> Header:
    """Check the shape of a header object; raises :class:`Malformed` naming the bad field."""
    if not isinstance(raw, dict):
        raise Malformed("header must be a JSON object")
    if not _FIELDS <= raw.keys() <= _FIELDS | _OPTIONAL:
        missing = sorted(_FIELDS - raw.keys())
        extra = sorted(raw.keys() - _FIELDS - _OPTIONAL)
        raise Malformed(f"header fields wrong: missing {missing}, unknown {extra}")
    if raw["v"].__class__ is not int or raw["v"] != PROTOCOL_VERSION:
        raise Malformed(f"unsupported protocol version {raw['v']!r}")
    kind = raw["kind"]
    if kind not in KINDS:
        raise Malformed(f"header field 'kind' must be one of {list(KINDS)}, got {kind!r}")
    classification = raw["classification"]
    if classification not in CLASSIFICATIONS:
        raise Malformed(f"unknown classification {classification!r}")
    encryption = raw["encryption"]
    if encryption is not None and not (
        isinstance(encryption, dict)
        and encryption.keys() == {"alg", "kid", "epk"}
        and encryption["alg"] == ALGORITHM
        and isinstance(encryption["kid"], str)
        and _DIGEST.match(encryption["kid"])
        and isinstance(encryption["epk"], str)
        and _EPK.match(encryption["epk"])
    ):
        raise Malformed(
            f"header field 'encryption' must be null or {{alg: {ALGORITHM}, kid: a certificate "
            "fingerprint, epk: 32 bytes in base64}"
        )
    _check_kind(raw, kind)
    _check_strings(raw)
    recipient, topic, in_reply_to = raw["recipient"], raw["topic"], raw["in_reply_to"]
    purpose = raw.get("purpose")
    if purpose is not None and (
        kind not in _PURPOSE_KINDS or purpose.__class__ is not str or not PURPOSE.match(purpose)
    ):
        raise Malformed(
            "header field 'purpose' is a purpose code (lower case, digits, '-'; at most 64), "
            "and only requests and one-way messages state one"
        )
    created = parse_time(raw["created"], "created")
    expires = parse_time(raw["expires"], "expires")
    # a difference, not created + MAX_TTL: near year 9999 that sum overflows (OverflowError)
    if not timedelta(0) < expires - created <= MAX_TTL:
        raise Malformed("'expires' must be after 'created', by at most one day")
    return Header(
        id=raw["id"],
        type=raw["type"],
        schema=raw["schema"],
        kind=kind,
        sender=_subsystem(raw["sender"], "sender"),
        recipient=None if recipient is None else _subsystem(recipient, "recipient"),
        topic=topic,
        created=created,
        expires=expires,
        correlation_id=raw["correlation_id"],
        in_reply_to=in_reply_to,
        classification=classification,
        payload_digest=raw["payload_digest"],
        encryption=encryption,
        signer=raw["signer"],
        raw=raw,
        purpose=purpose,
    )


def parse_envelope(data: bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> Envelope:
    """Parse wire bytes into an :class:`Envelope` (step 1 of the receive pipeline).

    Raises :class:`Malformed` when the message is too large, not JSON, or not an envelope.
    Nothing is verified here.
    """
    if len(data) > max_size:
        raise Malformed(f"message of {len(data)} bytes exceeds the limit of {max_size}")
    if b"\\" in data:
        raise Malformed("an envelope contains no backslash escapes")
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:  # invalid UTF-8 is a decode error too
        raise Malformed(f"message is not valid UTF-8 JSON: {exc}") from exc
    if not isinstance(document, dict) or document.keys() != {"header", "payload", "signature"}:
        raise Malformed("an envelope is an object with exactly header, payload and signature")
    header = parse_header(document["header"])
    # Without escapes, and with no quote inside any value, the bytes hold exactly two quotes
    # per member name and per string value; a repeated name (the parser keeps only one of
    # them) leaves more quotes than the parsed document accounts for.
    raw = header.raw
    strings = 5 + len(raw) + sum(1 for value in raw.values() if value.__class__ is str)
    if header.encryption is not None:
        strings += 6
    if data.count(b'"') != 2 * strings:
        raise Malformed("an envelope has no repeated member names")
    try:
        payload = base64.b64decode(document["payload"], validate=True)
        signature = base64.b64decode(document["signature"], validate=True)
    except (TypeError, ValueError, binascii.Error) as exc:
        raise Malformed("payload and signature must be base64 strings") from exc
    if len(signature) != 64:
        raise Malformed(f"an Ed25519 signature has 64 bytes, not {len(signature)}")
    return Envelope(header, payload, signature, canonical_flat(header.raw))


# --------------------------------------------------------------------------- building


@dataclass(frozen=True, slots=True)
class Signer:
    """A subsystem's signing identity: its key and the certificate the directory lists."""

    subsystem: SubsystemId
    key: ed25519.Ed25519PrivateKey
    certificate: x509.Certificate
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fingerprint", fingerprint(self.certificate))


@dataclass(frozen=True, slots=True)
class Recipient:
    """Whom a message goes to, and for encryption, their certified X25519 key."""

    subsystem: SubsystemId
    encryption_key: x25519.X25519PublicKey | None = None
    key_id: str | None = None


def new_message_id() -> str:
    return uuid.uuid4().hex


def build_envelope(  # noqa: PLR0913 - every argument is a header field
    signer: Signer,
    *,
    message_type: str,
    schema_version: str,
    kind: Kind,
    payload: bytes,
    classification: str,
    recipient: Recipient | None = None,
    ttl: timedelta = timedelta(minutes=5),
    correlation_id: str | None = None,
    in_reply_to: str | None = None,
    message_id: str | None = None,
    now: datetime | None = None,
    purpose: str | None = None,
) -> bytes:
    """Build, (encrypt,) and sign a message; returns the wire bytes (see :func:`build_message`)."""
    return build_message(
        signer,
        message_type=message_type,
        schema_version=schema_version,
        kind=kind,
        payload=payload,
        classification=classification,
        recipient=recipient,
        ttl=ttl,
        correlation_id=correlation_id,
        in_reply_to=in_reply_to,
        message_id=message_id,
        now=now,
        purpose=purpose,
    )[0]


def build_message(  # noqa: PLR0913 - every argument is a header field
    signer: Signer,
    *,
    message_type: str,
    schema_version: str,
    kind: Kind,
    payload: bytes,
    classification: str,
    recipient: Recipient | None = None,
    ttl: timedelta = timedelta(minutes=5),
    correlation_id: str | None = None,
    in_reply_to: str | None = None,
    message_id: str | None = None,
    now: datetime | None = None,
    purpose: str | None = None,
) -> tuple[bytes, Envelope]:
    """Build, (encrypt,) and sign a message; returns the wire bytes and their envelope (what
    :func:`parse_envelope` would make of them, without parsing them again).

    RESTRICTED and SECRET payloads are encrypted to ``recipient.encryption_key``; raises
    :class:`SealError` when such a payload has no recipient key. An event is published to
    every subscriber with ``recipient=None``; a RESTRICTED event is sent as one encrypted copy
    per subscriber, each with that subscriber as ``recipient``. ``purpose`` (requests and
    one-way messages) names the grant the sender invokes.
    """
    created = now or utcnow()
    raw: dict[str, Any] = {
        "v": PROTOCOL_VERSION,
        "id": message_id or new_message_id(),
        "type": message_type,
        "schema": schema_version,
        "kind": kind,
        "sender": str(signer.subsystem),
        "recipient": None if recipient is None else str(recipient.subsystem),
        "topic": message_type if kind == "event" else None,
        "created": format_time(created),
        "expires": format_time(created + ttl),
        "correlation_id": correlation_id,
        "in_reply_to": in_reply_to,
        "classification": classification,
        "payload_digest": "",
        "encryption": None,
        "signer": signer.fingerprint,
    }
    if purpose is not None:  # left out otherwise, so protocol 1.0 receivers still read it
        raw["purpose"] = purpose
    body = payload
    if classification in ENCRYPTED_CLASSIFICATIONS:
        if recipient is None or recipient.encryption_key is None or recipient.key_id is None:
            raise SealError(
                f"a {classification} message must be encrypted, and needs a recipient with a "
                "certified encryption key"
            )
        ephemeral, raw["encryption"] = encryption_info(recipient.key_id)
        body = seal(payload, ephemeral, recipient.encryption_key, associated_data(raw))
    raw["payload_digest"] = "sha256:" + hashlib.sha256(body).hexdigest()
    header = parse_header(raw)  # the sender gets the receiver's shape errors first
    signed = canonical_flat(header.raw)
    signature = signer.key.sign(SIGNING_CONTEXT + signed)
    document = {
        "header": raw,
        "payload": base64.b64encode(body).decode("ascii"),
        "signature": base64.b64encode(signature).decode("ascii"),
    }
    return orjson.dumps(document), Envelope(header, body, signature, signed)
