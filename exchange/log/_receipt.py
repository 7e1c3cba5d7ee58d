"""Delivery receipts (protocol.md §12): a receiver's signed statement of what it did with the
messages a sender sent it, bound to the receiver's message log.

One receipt covers what one batch of a receiver held from one sender. ``received`` entries
are log records of the receiver (``received`` or ``rejected`` with the reject code), each with
its RFC 6962 audit path to ``head``, the receiver's signed tree head for that batch: the record
names the message id and the SHA-256 of the exact bytes that arrived, so the sender, or anyone
holding the receipt and the CA certificate, can prove offline that the receiver logged those
bytes with that verdict, without one signature per message. ``handled`` entries say, later,
that the receiver's handler finished a message (done or failed); they are covered by the
receipt envelope's signature only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from exchange._errors import ExchangeError
from exchange.log._log import InclusionProof, verify_head_signature
from exchange.log._merkle import verify_inclusion
from exchange.log._records import LogRecord, SignedTreeHead, check_timestamp
from exchange.log._witness import _hex, _size, _text, log_keeper

RECEIPT_SCHEMA_VERSION = "1.0.0"
HANDLED_OUTCOMES = ("handled", "failed")


class ReceiptError(ExchangeError):
    """A receipt is malformed, or does not verify."""

    code = "receipt-invalid"


@dataclass(frozen=True, slots=True)
class Handled:
    """A receiver's handler finished ``message_id``: ``handled``, or ``failed`` with why."""

    message_id: str
    outcome: str
    reason: str = ""

    def as_dict(self) -> dict[str, str]:
        out = {"message_id": self.message_id, "outcome": self.outcome}
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class Receipt:
    """A parsed receipt payload. ``received`` pairs each log record (its envelope bytes left
    out: ``envelope_sha256`` names them) with its audit path to ``head``."""

    head: SignedTreeHead | None
    received: tuple[tuple[LogRecord, tuple[bytes, ...]], ...] = ()
    handled: tuple[Handled, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "head": None if self.head is None else self.head.as_dict(),
            "received": [
                {"record": record.as_dict(), "proof": [node.hex() for node in path]}
                for record, path in self.received
            ],
            "handled": [h.as_dict() for h in self.handled],
        }

    def verify(self, keeper: str, key: Ed25519PublicKey, *, every: bool = True) -> None:
        """Check that ``head`` is the log head of ``keeper`` signed with ``key`` and that
        every record (with ``every=False``, the first and the last) is in its tree; raises
        :class:`ReceiptError`."""
        if not self.received:
            return
        head = self.head
        if head is None:
            raise ReceiptError("a receipt with received records carries the head they are in")
        if log_keeper(head.log_id) != keeper:
            raise ReceiptError(f"the receipt's head is of log {head.log_id}, not of {keeper}")
        if not verify_head_signature(head, key):
            raise ReceiptError(f"the signature of {keeper}'s head at size {head.size} is wrong")
        checked = self.received if every else self.received[:1] + self.received[-1:]
        for record, path in checked:
            if not (
                record.seq < head.size
                and verify_inclusion(
                    record.leaf_hash(), record.seq, head.size, path, head.root_hash
                )
            ):
                raise ReceiptError(
                    f"the record of {record.message_id} is not in {keeper}'s log at size "
                    f"{head.size}"
                )


def receipt_of(proofs: Sequence[InclusionProof], handled: Sequence[Handled] = ()) -> Receipt:
    """The receipt for these records (all proved against one head) and handler outcomes."""
    heads = {p.head for p in proofs}
    if len(heads) > 1 or None in heads:
        raise ReceiptError("a receipt's records are proved against one signed head")
    return Receipt(
        head=next(iter(heads)) if heads else None,
        received=tuple((p.record, p.proof) for p in proofs),
        handled=tuple(handled),
    )


def receipt_shape(payload: object) -> str | None:
    """What is wrong with the top level of a receipt payload (``None`` if nothing): a
    cheap check for the receive pipeline; :func:`parse_receipt` reads the rest."""
    if not isinstance(payload, Mapping) or payload.keys() != {"head", "received", "handled"}:
        return "a receipt is an object with exactly head, received and handled"
    if not isinstance(payload["head"], Mapping | None):
        return "a receipt's head is an object or null"
    if not isinstance(payload["received"], list) or not isinstance(payload["handled"], list):
        return "a receipt's received and handled are lists"
    return None


def parse_receipt(payload: object) -> Receipt:
    """A receipt payload's shape; raises :class:`ReceiptError` naming what is wrong."""
    if not isinstance(payload, Mapping) or payload.keys() != {"head", "received", "handled"}:
        raise ReceiptError("a receipt is an object with exactly head, received and handled")
    try:
        head = None if payload["head"] is None else _head(payload["head"])
        received = tuple(_received(item) for item in _list(payload["received"], "received"))
        handled = tuple(_handled(item) for item in _list(payload["handled"], "handled"))
    except (ExchangeError, KeyError, TypeError) as exc:
        message = getattr(exc, "message", repr(exc))
        raise ReceiptError(f"the receipt is malformed: {message}") from exc
    return Receipt(head, received, handled)


def _list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ReceiptError(f"{what} must be a list")
    return value


def _head(raw: Mapping[str, Any]) -> SignedTreeHead:
    if not isinstance(raw, Mapping) or raw.get("v") != 1:
        raise ReceiptError("the head is a version 1 signed tree head")
    return SignedTreeHead(
        size=_size(raw["size"]),
        root_hash=_hex(raw["root"], 32, "root"),
        timestamp=check_timestamp(raw["at"]),
        log_id=_text(raw["log"], "log"),
        signature=_hex(raw["signature"], 64, "signature"),
    )


def _received(item: Mapping[str, Any]) -> tuple[LogRecord, tuple[bytes, ...]]:
    rec = item["record"]
    direction = rec["direction"]
    if direction not in ("received", "rejected"):
        raise ReceiptError("a receipted record was received or rejected")
    code = rec["reject_code"]
    if (direction == "rejected") != isinstance(code, str):
        raise ReceiptError("a rejected record has a reject code, a received one none")
    record = LogRecord(
        seq=_size(rec["seq"]),
        direction=direction,
        at=check_timestamp(rec["at"]),
        message_id=_text(rec["message_id"], "message_id"),
        message_type=_text(rec["message_type"], "message_type"),
        sender=_text(rec["sender"], "sender"),
        recipient=_text(rec["recipient"], "recipient"),
        reject_code=code,
        envelope_sha256=_hex(rec["envelope_sha256"], 32, "envelope_sha256").hex(),
        envelope=b"",
    )
    path = tuple(_hex(node, 32, "proof node") for node in _list(item["proof"], "proof"))
    return record, path


def _handled(item: Mapping[str, Any]) -> Handled:
    outcome = item["outcome"]
    if outcome not in HANDLED_OUTCOMES:
        raise ReceiptError(f"a handled outcome is one of {', '.join(HANDLED_OUTCOMES)}")
    reason = item.get("reason", "")
    if not isinstance(reason, str) or item.keys() - {"message_id", "outcome", "reason"}:
        raise ReceiptError("a handled entry has message_id, outcome and an optional reason")
    return Handled(_text(item["message_id"], "message_id"), outcome, reason)
