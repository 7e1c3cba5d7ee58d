"""The receive pipeline's checks, as pure functions over a parsed envelope.

Each step raises the :class:`RejectError` of its reject code (protocol.md, "Reject codes");
:class:`Inspector` runs them in the order of the pipeline. Durable effects (the message log,
recording the id as seen, the handler) belong to the connector; the core only decides.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson
from cryptography.hazmat.primitives.asymmetric import x25519

from exchange._directory import CertEntry, Directory
from exchange._envelope import (
    DEFAULT_MAX_SIZE,
    SIGNING_CONTEXT,
    Envelope,
    associated_data,
    parse_envelope,
)
from exchange._errors import (
    BadSignature,
    CertificateExpired,
    CertificateRevoked,
    DirectoryExpiredError,
    Duplicate,
    Expired,
    PayloadIssue,
    RejectError,
    SchemaInvalid,
    Stale,
    UnknownSender,
)
from exchange._identity import SubsystemId
from exchange._policy import AccessPolicy, AccessRequest, directory_policy
from exchange._seal import open_sealed
from exchange._time import format_time, utcnow

PayloadValidator = Callable[[str, str, Any], Sequence[PayloadIssue]]
"""``(message type, schema version, payload) -> issues`` (empty when valid). The connector
plugs the schema registry in here; an unknown type or version is an issue too."""


class SeenStore(Protocol):
    """Remembers message ids for replay protection. The connector's is durable."""

    def contains(self, message_id: str) -> bool: ...

    def add(self, message_id: str, keep_until: datetime) -> None: ...


@dataclass(slots=True)
class MemorySeenStore:
    """A seen-store in memory, pruned of ids past their keep-until time (for tests, tools)."""

    _ids: dict[str, datetime] = field(default_factory=dict)

    def contains(self, message_id: str) -> bool:
        return message_id in self._ids

    def add(self, message_id: str, keep_until: datetime) -> None:
        self._ids[message_id] = keep_until

    def prune(self, now: datetime) -> int:
        old = [k for k, until in self._ids.items() if until < now]
        for key in old:
            del self._ids[key]
        return len(old)


def authenticate(envelope: Envelope, directory: Directory, now: datetime) -> CertEntry:
    """Steps 2 and 3: the signer's certificate is listed, belongs to the sender, is valid and
    not revoked; the signature verifies and the payload digest matches."""
    header = envelope.header
    entry = directory.certificate(header.signer)
    if entry is None:
        raise UnknownSender(f"certificate {header.signer} is not in directory {directory.serial}")
    if entry.info.subsystem != header.sender or entry.info.usage != "signing":
        raise UnknownSender(
            f"certificate {header.signer} is not a signing certificate of {header.sender}"
        )
    if entry.revoked:
        raise CertificateRevoked(
            f"the signing certificate of {header.sender} (serial {entry.info.serial:x}) is revoked"
        )
    if not entry.info.not_before <= now < entry.not_after:
        raise CertificateExpired(
            f"the signing certificate of {header.sender} is valid from "
            f"{format_time(entry.info.not_before)} to {format_time(entry.not_after)}"
        )
    if not entry.info.verifies(envelope.signature, SIGNING_CONTEXT + envelope.signed_bytes):
        raise BadSignature(f"signature of message {header.id} does not verify")
    if not envelope.digest_matches():
        raise BadSignature(f"payload of message {header.id} does not match its digest")
    return entry


def check_freshness(
    envelope: Envelope, now: datetime, *, skew: timedelta, max_age: timedelta
) -> None:
    """Step 4: not past expiry (``expired``); created neither in the future beyond ``skew``
    nor longer ago than ``max_age`` (``stale``). ``max_age`` is also how long the seen-store
    must remember an id: anything older is refused here, so replays stay bounded."""
    header = envelope.header
    if now - skew > header.expires:
        raise Expired(f"message {header.id} expired at {format_time(header.expires)}")
    if header.created > now + skew:
        raise Stale(
            f"message {header.id} was created at {format_time(header.created)}, in the future "
            f"beyond the allowed clock skew of {skew.total_seconds():g} s"
        )
    if header.created < now - max_age:
        raise Stale(
            f"message {header.id} was created at {format_time(header.created)}, more than "
            f"{max_age.total_seconds():g} s ago"
        )


def check_replay(envelope: Envelope, seen: SeenStore) -> None:
    """Step 5: raise :class:`Duplicate` when the id was already accepted."""
    if seen.contains(envelope.header.id):
        raise Duplicate(f"message {envelope.header.id} was already received")


def access_request(envelope: Envelope, receiver: SubsystemId, at: datetime) -> AccessRequest:
    """What the access policy judges of ``envelope`` arriving at ``receiver`` at ``at``."""
    header = envelope.header
    return AccessRequest(
        sender=header.sender,
        message_type=header.type,
        kind=header.kind,
        recipient=header.recipient,
        classification=header.classification,
        encrypted=header.encryption is not None,
        receiver=receiver,
        at=at,
        purpose=header.purpose,
    )


def open_payload(envelope: Envelope, keys: Mapping[str, x25519.X25519PrivateKey]) -> bytes:
    """Step 7: the plaintext payload (decrypted when encrypted) or :class:`Undecryptable`."""
    if envelope.header.encryption is None:
        return envelope.payload
    return open_sealed(
        envelope.payload,
        envelope.header.encryption,
        keys,
        associated_data(envelope.header.raw),
    )


def check_payload(envelope: Envelope, plaintext: bytes, validator: PayloadValidator) -> Any:
    """Step 8: parse the payload as JSON and validate it; returns the parsed payload or raises
    :class:`SchemaInvalid` with every issue and its JSON path."""
    header = envelope.header
    try:
        payload = orjson.loads(plaintext)
    except orjson.JSONDecodeError as exc:
        issue = PayloadIssue("$", f"payload is not UTF-8 JSON: {exc}", "json")
        raise SchemaInvalid(f"payload of {header.id} is not JSON", (issue,)) from exc
    try:
        issues = tuple(validator(header.type, header.schema, payload))
    except RecursionError as exc:
        # orjson reads 1024 levels of nesting, more than Python's recursion limit: a validator
        # that recurses into such a payload gives up. That is a payload we cannot accept, not
        # a reason to crash the receive loop (which would return the message forever).
        issue = PayloadIssue("$", "payload is nested too deeply to validate", "depth")
        raise SchemaInvalid(f"payload of {header.id} is nested too deeply", (issue,)) from exc
    if issues:
        raise SchemaInvalid(
            f"payload of {header.id} does not match {header.type} {header.schema} "
            f"({len(issues)} error{'s' if len(issues) > 1 else ''})",
            issues,
        )
    return payload


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message that passed every check: the envelope and its parsed payload."""

    envelope: Envelope
    payload: Any
    certificate: CertEntry


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message refused at the first failing step: its reject error and, when the bytes
    parsed, the envelope (so whoever answers, logs or dead-letters it parses nothing again)."""

    error: RejectError
    envelope: Envelope | None


Verdict = Accepted | Rejected


@dataclass(slots=True)
class Inspector:
    """The receive pipeline's decisions (steps 1-8) for ``receiver``.

    :meth:`judge` returns the :data:`Verdict` on a message; :meth:`inspect` returns
    :class:`Accepted` or raises the reject error of the first failing step. Replace
    ``directory`` to pick up a newer one; the policy follows it.
    """

    receiver: SubsystemId
    directory: Directory
    decryption_keys: Mapping[str, x25519.X25519PrivateKey]
    validator: PayloadValidator
    seen: SeenStore
    skew: timedelta = timedelta(seconds=30)
    max_age: timedelta = timedelta(minutes=10)
    max_size: int = DEFAULT_MAX_SIZE
    clock: Callable[[], datetime] = utcnow
    _policy: AccessPolicy | None = None
    _policy_directory: Directory | None = None

    def policy(self) -> AccessPolicy:
        """The access policy of the current directory (rebuilt when the directory changes)."""
        if self._policy is None or self._policy_directory is not self.directory:
            self._policy = directory_policy(self.directory)
            self._policy_directory = self.directory
        return self._policy

    def verify(self, data: bytes) -> tuple[Envelope, CertEntry]:
        """Steps 1-4: parse, authenticate, freshness.

        Raises :class:`DirectoryExpiredError` (not a reject: the message is not at fault)
        when the directory has expired; the connector then stops taking messages until it
        holds a current one, so revocations are never missed."""
        now = self._now()
        envelope = parse_envelope(data, max_size=self.max_size)
        return envelope, self._authentic(envelope, now)

    def _now(self) -> datetime:
        now = self.clock()
        if self.directory.is_stale(now):
            raise DirectoryExpiredError(
                f"directory {self.directory.serial} expired at "
                f"{format_time(self.directory.expires)}; refusing to judge messages with it"
            )
        return now

    def _authentic(self, envelope: Envelope, now: datetime) -> CertEntry:
        entry = authenticate(envelope, self.directory, now)
        check_freshness(envelope, now, skew=self.skew, max_age=self.max_age)
        return entry

    def judge(self, data: bytes) -> Verdict:
        """Steps 1-8 on ``data``; raises only :class:`DirectoryExpiredError`."""
        now = self._now()
        try:
            envelope = parse_envelope(data, max_size=self.max_size)
        except RejectError as exc:
            return Rejected(exc, None)
        try:
            entry = self._authentic(envelope, now)
            check_replay(envelope, self.seen)
            self.policy().check(access_request(envelope, self.receiver, now))
            plaintext = open_payload(envelope, self.decryption_keys)
            payload = check_payload(envelope, plaintext, self.validator)
        except RejectError as exc:
            return Rejected(exc, envelope)
        return Accepted(envelope, payload, entry)

    def inspect(self, data: bytes) -> Accepted:
        verdict = self.judge(data)
        if isinstance(verdict, Rejected):
            raise verdict.error
        return verdict

    def keep_until(self, envelope: Envelope) -> datetime:
        """How long the seen-store must remember this message's id."""
        return max(envelope.header.expires, envelope.header.created + self.max_age) + self.skew
