"""The data the message log keeps: what a caller appends, what is stored, what is signed."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Literal, get_args

from exchange._canonical import canonical, canonical_record
from exchange._errors import LogError
from exchange.log._merkle import leaf_hash

Direction = Literal["sent", "received", "rejected"]
DIRECTIONS: tuple[str, ...] = get_args(Direction)
LEAF_VERSION = 1
HEAD_VERSION = 1

_AT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\Z")


def check_timestamp(at: str) -> str:
    """Return ``at`` if it is an RFC 3339 UTC time with milliseconds
    (``2026-11-22T14:00:00.123Z``); raises ``LogError`` otherwise."""
    if not isinstance(at, str) or not _AT.match(at):
        raise LogError(f"time {at!r} is not of the form 2026-11-22T14:00:00.123Z")
    return at


@dataclass(frozen=True, slots=True)
class LogEntry:
    """A message to log, as the connector knows it. ``recipient`` is the recipient
    subsystem or the topic; ``reject_code`` is set exactly when ``direction`` is
    ``"rejected"``; ``at`` defaults to the time of :meth:`MessageLog.append`."""

    direction: Direction
    message_id: str
    message_type: str
    sender: str
    recipient: str
    envelope: bytes = field(repr=False)
    reject_code: str | None = None
    at: str | None = None


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One logged message: its position ``seq`` (0-based), the fields that go into the
    Merkle leaf, and the raw envelope bytes, which are stored but reach the leaf only
    through ``envelope_sha256``."""

    seq: int
    direction: str
    at: str
    message_id: str
    message_type: str
    sender: str
    recipient: str
    reject_code: str | None
    envelope_sha256: str
    envelope: bytes = field(repr=False)

    def leaf_fields(self) -> dict[str, object]:
        """The leaf as a JSON object (``"v": 1`` plus every field but the envelope)."""
        return {
            "v": LEAF_VERSION,
            "seq": self.seq,
            "direction": self.direction,
            "at": self.at,
            "message_id": self.message_id,
            "message_type": self.message_type,
            "sender": self.sender,
            "recipient": self.recipient,
            "reject_code": self.reject_code,
            "envelope_sha256": self.envelope_sha256,
        }

    def leaf_data(self) -> bytes:
        """The canonical bytes of :meth:`leaf_fields`: what the Merkle tree commits to."""
        return canonical_record(self.leaf_fields())

    def leaf_hash(self) -> bytes:
        """``SHA256(0x00 || leaf_data)``."""
        return leaf_hash(self.leaf_data())

    def envelope_matches(self) -> bool:
        """Whether the stored envelope bytes hash to ``envelope_sha256``."""
        return hashlib.sha256(self.envelope).hexdigest() == self.envelope_sha256

    def as_dict(self) -> dict[str, object]:
        """The record for JSON output: the leaf fields, without the envelope bytes."""
        out = self.leaf_fields()
        del out["v"]
        return out


def make_record(entry: LogEntry, seq: int, at: str) -> LogRecord:
    """The record for ``entry`` at position ``seq``; raises ``LogError`` if the entry is
    not loggable (unknown direction, reject code missing or out of place, bad time)."""
    if entry.direction not in DIRECTIONS:
        raise LogError(f"direction {entry.direction!r} is not one of {', '.join(DIRECTIONS)}")
    if (entry.direction == "rejected") != (entry.reject_code is not None):
        raise LogError("a reject code is given exactly for rejected messages")
    if not isinstance(entry.envelope, bytes):
        raise LogError("the envelope must be bytes")
    for name in ("message_id", "message_type", "sender", "recipient"):
        if not isinstance(getattr(entry, name), str):
            raise LogError(f"{name} must be a string")
    return LogRecord(
        seq=seq,
        direction=entry.direction,
        at=check_timestamp(entry.at if entry.at is not None else at),
        message_id=entry.message_id,
        message_type=entry.message_type,
        sender=entry.sender,
        recipient=entry.recipient,
        reject_code=entry.reject_code,
        envelope_sha256=hashlib.sha256(entry.envelope).hexdigest(),
        envelope=entry.envelope,
    )


@dataclass(frozen=True, slots=True)
class SignedTreeHead:
    """The log's root at ``size`` records, signed with Ed25519 by the log's key over
    :meth:`signed_bytes`. ``timestamp`` is RFC 3339 UTC with milliseconds."""

    size: int
    root_hash: bytes
    timestamp: str
    log_id: str
    signature: bytes = field(repr=False)

    def signed_bytes(self) -> bytes:
        """``b"tabadul/1 tree-head\\n" + canonical({"v": 1, "log", "size", "root", "at"})``."""
        return head_bytes(self.log_id, self.size, self.root_hash, self.timestamp)

    def as_dict(self) -> dict[str, object]:
        """The head for JSON output (hashes and signature in lowercase hex)."""
        return {
            "v": HEAD_VERSION,
            "log": self.log_id,
            "size": self.size,
            "root": self.root_hash.hex(),
            "at": self.timestamp,
            "signature": self.signature.hex(),
        }


HEAD_CONTEXT = b"tabadul/1 tree-head\n"


def head_bytes(log_id: str, size: int, root_hash: bytes, timestamp: str) -> bytes:
    """What a tree head signature covers: a context prefix (so no envelope or directory
    signature can pass for a head) and the canonical head."""
    return HEAD_CONTEXT + canonical(
        {"v": HEAD_VERSION, "log": log_id, "size": size, "root": root_hash.hex(), "at": timestamp}
    )
