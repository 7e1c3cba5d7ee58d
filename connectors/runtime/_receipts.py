"""Delivery receipts on the connector (protocol.md §12): the receiver sends one per batch
and sender, bound to its signed log head; the finisher sends the handler outcomes; the sender
checks each receipt and records what became of its messages."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from connectors._errors import ConnectorError
from connectors._store import ConnectorStore, DeliveryState
from connectors.runtime._core import Core
from connectors.runtime._outbox import Outbox, Sealed
from exchange import Accepted, RejectError, SubsystemId, parse_envelope
from exchange.log import (
    Handled,
    LogRecord,
    MessageLog,
    Receipt,
    ReceiptError,
    parse_receipt,
    receipt_of,
)

logger = logging.getLogger("connectors.runtime")

RECEIPT_MAX = 64  # records per receipt: each carries its audit path (about 1.5 kB)

_T = TypeVar("_T")


def _chunks(items: Sequence[_T], size: int) -> list[Sequence[_T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def receipts_for(
    core: Core, outbox: Outbox, owed: Mapping[SubsystemId, Sequence[LogRecord]]
) -> list[Sealed]:
    """The receipts for the log records ``owed`` to each sender, against the head of the
    batch just flushed (call with the log lock held). A receipt that cannot be built (the
    sender left the directory) is skipped with a warning: the records stay in the log."""
    head = core.log.latest_head()
    if head is None:
        return []
    out = []
    for sender, records in owed.items():
        proofs = core.log.inclusion_proofs(records, head)
        for chunk in _chunks(proofs, RECEIPT_MAX):
            try:
                out.append(outbox.receipt(sender, receipt_of(chunk)))
            except ConnectorError as exc:
                logger.warning("no receipt for %d messages of %s: %s", len(chunk), sender, exc)
    return out


def handled_receipts(
    outbox: Outbox, notices: Iterable[tuple[SubsystemId, Handled]]
) -> list[Sealed]:
    """Receipts telling senders what the handlers made of their messages."""
    by_sender: dict[SubsystemId, list[Handled]] = {}
    for sender, notice in notices:
        by_sender.setdefault(sender, []).append(notice)
    out = []
    for sender, handled in by_sender.items():
        for chunk in _chunks(handled, RECEIPT_MAX * 8):
            try:
                out.append(outbox.receipt(sender, receipt_of([], chunk)))
            except ConnectorError as exc:
                logger.warning("no handled receipt for %s: %s", sender, exc)
    return out


def note_receipts(
    core: Core, receipts: Sequence[Accepted], confirmed: Sequence[DeliveryState] = ()
) -> None:
    """Record what the receipts say of our messages (each checked against the receiver's
    signed log head first), with the ``confirmed`` states held until now; count the
    refusals."""
    steps = list(confirmed)
    me = str(core.me)
    for accepted in receipts:
        receiver = accepted.envelope.header.sender
        core.store.remember(accepted.envelope.header.id)  # a redelivered copy is a duplicate
        try:
            receipt = parse_receipt(accepted.payload)
            _verify(core, receiver, receipt)
        except ReceiptError as exc:
            logger.warning(
                "receipt %s from %s ignored: %s", accepted.envelope.header.id, receiver, exc
            )
            continue
        for record, _ in receipt.received:
            if record.sender != me:
                continue
            refused = record.direction == "rejected"
            if refused:
                core.metrics.count("refused_by_receiver", str(record.reject_code))
            state = "refused" if refused else "received"
            steps.append(
                DeliveryState(
                    record.message_id,
                    str(receiver),
                    record.message_type,
                    state,
                    record.reject_code,
                    record.at,
                )
            )
        for notice in receipt.handled:
            code = None if notice.outcome == "handled" else "handler-failed"
            steps.append(DeliveryState(notice.message_id, str(receiver), "", notice.outcome, code))
    core.store.note_deliveries(steps)


def _verify(core: Core, receiver: SubsystemId, receipt: Receipt) -> None:
    """Verify with any signing key the directory lists for ``receiver`` (its log may still
    sign with the key of before a rotation)."""
    keys = [
        e.info.public_key
        for e in core.directory.signing_certificates(receiver)
        if isinstance(e.info.public_key, Ed25519PublicKey)
    ]
    failure = ReceiptError(f"{receiver} has no signing certificate in the directory")
    for key in reversed(keys):
        try:
            # the receipt's envelope signature already vouches for all of it; the paths
            # are evidence for third parties, spot-checked here at both ends
            receipt.verify(str(receiver), key, every=False)
        except ReceiptError as exc:
            failure = exc
        else:
            return
    raise failure


@dataclass(frozen=True, slots=True)
class MessageStatus:
    """What became of a message this subsystem sent: when it was logged as sent, and per
    recipient (per subscriber for an event) how far it got: ``confirmed`` by the broker,
    ``received`` or ``refused`` (with the code) by the receiver, ``handled`` or ``failed``.
    A request's answer is its response or error, so a request shows only as sent."""

    message_id: str
    message_type: str
    kind: str
    to: str  # the recipient, or the topic of a broadcast event
    sent_at: str | None
    deliveries: tuple[DeliveryState, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.message_id,
            "type": self.message_type,
            "kind": self.kind,
            "to": self.to,
            "sent_at": self.sent_at,
            "deliveries": [d.as_dict() for d in self.deliveries],
        }


def message_status(store: ConnectorStore, log: MessageLog, message_id: str) -> MessageStatus | None:
    """The status of ``message_id`` from the log's sent record and the receipts' states;
    ``None`` when this subsystem knows nothing of it."""
    sent = [r for r in log.records(message_id) if r.direction == "sent"]
    deliveries = tuple(store.delivery_states(message_id))
    if not sent and not deliveries:
        return None
    if sent:
        record = sent[0]
        kind: str = "unknown"
        with contextlib.suppress(RejectError):
            kind = parse_envelope(record.envelope).header.kind
        return MessageStatus(
            message_id, record.message_type, kind, record.recipient, record.at, deliveries
        )
    first = deliveries[0]  # a receipt for a message logged elsewhere (another replica)
    return MessageStatus(message_id, first.message_type, "unknown", "", None, deliveries)
