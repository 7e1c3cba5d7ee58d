"""The sending side: the sender's checks, building and signing, then logging and publishing.

What leaves is a :class:`Sealed` value: the wire bytes with their parsed envelope and routing,
so nothing on the way (log, broker, a waiting request) parses them again."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric import x25519

from connectors._errors import SendRefused, StoreError
from connectors._store import DeliveryState
from connectors._transport import OutboundMessage, direct_key, event_key
from connectors.runtime._core import Core, log_entry
from exchange import (
    ENCRYPTED_CLASSIFICATIONS,
    ERROR_TYPE,
    RECEIPT_TYPE,
    UNSPECIFIED_PURPOSE,
    AccessRequest,
    Directory,
    Envelope,
    ExchangeError,
    Forbidden,
    Recipient,
    Signer,
    SubsystemId,
    build_message,
    format_time,
    new_message_id,
    utcnow,
)
from exchange.log import RECEIPT_SCHEMA_VERSION, LogEntry, Receipt
from schemas import SchemaError

logger = logging.getLogger("connectors.runtime")

ERROR_SCHEMA_VERSION = "1.0.0"


@dataclass(frozen=True, slots=True)
class Sealed:
    """A built message: its bytes, their envelope, and where it goes."""

    data: bytes
    envelope: Envelope
    routing_key: str

    @property
    def message_id(self) -> str:
        return self.envelope.header.id

    def outbound(self) -> OutboundMessage:
        header = self.envelope.header
        return OutboundMessage(self.routing_key, self.data, header.id, header.correlation_id)

    def log_entry(self) -> LogEntry:
        return log_entry("sent", self.envelope, self.data)


class Outbox:
    """Builds what this subsystem sends, after the checks every receiver would make."""

    def __init__(self, core: Core) -> None:
        self._core = core
        self._signer: Signer | None = None
        self._published_cache: tuple[Directory, frozenset[str]] | None = None
        self._unrecorded: list[DeliveryState] = []  # confirmed, not yet in the store
        self._confirmed_lock = threading.Lock()

    # ---- checks

    def signer(self) -> Signer:
        """The current signing identity (cached per certificate: rotation changes it)."""
        key, cert = self._core.keys.signer()
        cached = self._signer
        if cached is None or cached.certificate is not cert:
            cached = self._signer = Signer(self._core.me, key, cert)
        return cached

    def recipient(self, subsystem: SubsystemId) -> Recipient:
        entry = self._core.directory.encryption_certificate(subsystem, utcnow())
        if entry is None:
            return Recipient(subsystem)
        key = entry.info.public_key
        assert isinstance(key, x25519.X25519PublicKey)  # usage "encryption" guarantees it
        return Recipient(subsystem, key, entry.info.fingerprint)

    def check_payload(self, message_type: str, payload: Any) -> tuple[str, str]:
        """(schema version, classification) of the type, once the payload is valid."""
        registry = self._core.registry
        try:
            entry = registry.latest(message_type)
        except SchemaError as exc:
            raise SendRefused(exc.message, exc.code) from exc
        report = registry.validate(message_type, entry.version, payload)
        if not report.ok:
            raise SendRefused(
                f"{message_type} payload does not match its schema {entry.version}",
                "schema-invalid",
                [issue.as_dict() for issue in report.errors],
            )
        return entry.version, entry.classification.value

    def _check_grant(self, request: AccessRequest) -> None:
        if request.kind == "event":
            if request.message_type not in self._published_types():
                raise SendRefused(
                    f"{self._core.me} is not a publisher of {request.message_type}", "forbidden"
                )
            return
        try:
            self._core.inspector.policy().check(request)
        except Forbidden as exc:
            raise SendRefused(exc.message, exc.code) from exc

    def _published_types(self) -> frozenset[str]:
        """The event types this subsystem may publish, by the current directory."""
        directory = self._core.directory
        cached = self._published_cache
        if cached is None or cached[0] is not directory:
            types = frozenset(
                s.message_type
                for s in directory.services
                if s.role == "publishes" and s.subsystem == self._core.me
            )
            cached = self._published_cache = (directory, types)
        return cached[1]

    def require_fresh_directory(self) -> None:
        """Send nothing on an expired directory: its grants, revocations and certificates may
        be out of date (the watcher switches to a renewed one as soon as it appears)."""
        held = self._core.directory
        if held.is_stale():
            raise SendRefused(
                f"the directory (serial {held.serial}) expired at {format_time(held.expires)}; "
                "nothing is sent until a renewed one is picked up",
                "directory-expired",
            )

    def target(self, to: str | SubsystemId) -> SubsystemId:
        try:
            return to if isinstance(to, SubsystemId) else SubsystemId.parse(to)
        except ExchangeError as exc:
            raise SendRefused(exc.message, exc.code) from exc

    def purpose(self, message_type: str, to: SubsystemId, purpose: str | None) -> str | None:
        """The purpose a request or one-way message states: ``purpose`` if given; else the
        only purpose of the grants in force for it (none is stated for the unspecified
        purpose of an old grant); several to choose from is ``purpose-required``."""
        if purpose is not None:
            return purpose
        now = utcnow()
        me = self._core.me
        purposes = {
            g.purpose for g in self._core.directory.grants_for(me, message_type, to) if g.live(now)
        }
        if len(purposes) > 1:
            raise SendRefused(
                f"{me} may send {message_type} to {to} for several purposes "
                f"({', '.join(sorted(purposes))}): state which one",
                "purpose-required",
            )
        chosen = purposes.pop() if purposes else None
        return None if chosen == UNSPECIFIED_PURPOSE else chosen

    # ---- building

    def build(  # noqa: PLR0913 - the header fields of one message
        self,
        message_type: str,
        kind: str,
        to: SubsystemId | None,
        payload: Any,
        *,
        correlation_id: str | None = None,
        in_reply_to: str | None = None,
        checked: tuple[str, str] | None = None,
        purpose: str | None = None,
    ) -> Sealed:
        """Validate, authorise, (encrypt,) sign: the message ready to log and publish."""
        version, classification = checked or self.check_payload(message_type, payload)
        recipient = None if to is None else self.recipient(to)
        self._check_grant(
            AccessRequest(
                sender=self._core.me,
                message_type=message_type,
                kind=kind,
                recipient=to,
                classification=classification,
                encrypted=classification in ENCRYPTED_CLASSIFICATIONS,
                receiver=to or self._core.me,
                at=utcnow(),
                purpose=purpose,
            )
        )
        return self.sign(
            message_type,
            version,
            kind,
            payload,
            classification=classification,
            recipient=recipient,
            correlation_id=correlation_id,
            in_reply_to=in_reply_to,
            purpose=purpose,
        )

    def sign(  # noqa: PLR0913 - the header fields of one message
        self,
        message_type: str,
        version: str,
        kind: str,
        payload: Any,
        *,
        classification: str,
        recipient: Recipient | None,
        correlation_id: str | None = None,
        in_reply_to: str | None = None,
        purpose: str | None = None,
    ) -> Sealed:
        """Sign (and encrypt when classified so). Only the size is checked here (the callers
        made the other checks): an envelope larger than receivers take is refused
        ``too-large`` before it is logged or published, since every receiver would refuse it
        as ``malformed`` and the sender would never know."""
        body = orjson.dumps(payload)
        limit = self._core.inspector.max_size
        if len(body) > limit:  # before encrypting and signing what cannot go anyway
            raise _too_large(message_type, len(body), limit, "its payload alone")
        try:
            data, envelope = build_message(
                self.signer(),
                message_type=message_type,
                schema_version=version,
                kind=kind,  # type: ignore[arg-type]
                payload=body,
                classification=classification,
                recipient=recipient,
                ttl=self._core.settings.ttl,
                correlation_id=correlation_id,
                in_reply_to=in_reply_to,
                message_id=new_message_id(),
                purpose=purpose,
            )
        except ExchangeError as exc:
            raise SendRefused(exc.message, exc.code) from exc
        if len(data) > limit:
            raise _too_large(message_type, len(data), limit, "its envelope")
        to = None if recipient is None else recipient.subsystem
        routing = event_key(message_type) if to is None else direct_key(to.slug)
        return Sealed(data, envelope, routing)

    def error(self, request: Envelope, payload: Mapping[str, object]) -> Sealed:
        """The signed error answering ``request`` (protocol.md 4.3)."""
        return self.sign(
            ERROR_TYPE,
            ERROR_SCHEMA_VERSION,
            "error",
            payload,
            classification="INTERNAL",
            recipient=Recipient(request.header.sender),
            correlation_id=request.header.id,
            in_reply_to=request.digest,
        )

    def receipt(self, to: SubsystemId, receipt: Receipt) -> Sealed:
        """The signed receipt to ``to`` (protocol.md §12)."""
        return self.sign(
            RECEIPT_TYPE,
            RECEIPT_SCHEMA_VERSION,
            "receipt",
            receipt.as_dict(),
            classification="INTERNAL",
            recipient=Recipient(to),
        )

    def emit(self, messages: Sequence[Sealed]) -> None:
        """Log as sent (durably), then publish and wait for the broker's confirms; the
        events and one-way messages are then confirmed, for their status."""
        self._core.record(m.log_entry() for m in messages)
        self._core.transport.publish([m.outbound() for m in messages])
        for message in messages:
            self._core.metrics.count("sent", message.envelope.header.type)
        subscribers: dict[str, list[SubsystemId]] = {}  # per type, looked up once a call
        confirmed = [step for m in messages for step in self._confirmed(m, subscribers)]
        if confirmed:
            with self._confirmed_lock:
                self._unrecorded += confirmed

    def take_confirmed(self) -> list[DeliveryState]:
        """The confirmed states not yet recorded (they are written with the next receipts,
        or by :meth:`record_confirmed`: a commit per publish would cost as much as the
        publish's own log flush)."""
        with self._confirmed_lock:
            taken, self._unrecorded = self._unrecorded, []
        return taken

    def record_confirmed(self) -> None:
        """Write the confirmed states still held in memory."""
        taken = self.take_confirmed()
        try:
            self._core.store.note_deliveries(taken)
        except StoreError as exc:  # sent and confirmed all the same: only the status lags
            logger.warning("delivery states of %d not recorded: %s", len(taken), exc)
            with self._confirmed_lock:
                self._unrecorded = taken + self._unrecorded

    def _confirmed(
        self, message: Sealed, subscribers: dict[str, list[SubsystemId]]
    ) -> list[DeliveryState]:
        """The parties a confirmed event or one-way message is now on its way to."""
        header = message.envelope.header
        if header.kind not in ("event", "message"):
            return []
        if header.recipient is not None:
            parties = [header.recipient]
        else:
            if header.type not in subscribers:
                subscribers[header.type] = self._core.directory.subscribers(header.type)
            parties = subscribers[header.type]
        at = format_time(utcnow())
        return [
            DeliveryState(header.id, str(p), header.type, "confirmed", None, at) for p in parties
        ]

    # ---- what applications send

    def send(
        self, message_type: str, to: str | SubsystemId, payloads: Iterable[Any], purpose: str | None
    ) -> list[Sealed]:
        """One-way messages to one subsystem: one log flush and one confirmed publish."""
        self.require_fresh_directory()
        target = self.target(to)
        stated = self.purpose(message_type, target, purpose)
        messages = [
            self.build(message_type, "message", target, p, purpose=stated) for p in payloads
        ]
        self.emit(messages)
        return messages

    def publish(self, message_type: str, payload: Any) -> str:
        """An event to every granted subscriber. A RESTRICTED or SECRET event goes as one
        encrypted copy per subscriber. Returns the id (of the first copy)."""
        self.require_fresh_directory()
        checked = self.check_payload(message_type, payload)
        if checked[1] not in ENCRYPTED_CLASSIFICATIONS:
            copies = [self.build(message_type, "event", None, payload, checked=checked)]
        else:
            copies = [
                self.build(message_type, "event", subscriber, payload, checked=checked)
                for subscriber in self._core.directory.subscribers(message_type)
            ]
            if not copies:
                raise SendRefused(f"{message_type} has no subscribers to send to", "no-subscriber")
        self.emit(copies)
        return copies[0].message_id

    def publish_many(self, message_type: str, payloads: Iterable[Any]) -> int:
        """Many broadcast events: one log flush and one confirmed publish for all. Only for
        types that travel in clear (RESTRICTED events go one copy per subscriber)."""
        self.require_fresh_directory()
        messages = []
        for payload in payloads:
            checked = self.check_payload(message_type, payload)
            if checked[1] in ENCRYPTED_CLASSIFICATIONS:
                raise SendRefused(f"{message_type} is encrypted: use publish()", "encrypted")
            messages.append(self.build(message_type, "event", None, payload, checked=checked))
        self.emit(messages)
        return len(messages)


def _too_large(message_type: str, size: int, limit: int, what: str) -> SendRefused:
    return SendRefused(
        f"{message_type} not sent: {what} is {size} bytes, over the {limit} bytes every "
        "receiver accepts (protocol.md, receive step 1); send less per message",
        "too-large",
    )
