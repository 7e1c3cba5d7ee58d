"""Dead-letter management: what a subsystem refused or could not handle, kept, shown, sent to
the handler again after a fix, or discarded with a reason (protocol.md §11).

The dead-letter queue ``tabadul.dlq.<slug>`` is the intake: the receive pipeline puts there
what it refused (``x-tabadul-reject`` names the code); what the handler side failed every
attempt is kept at once with its failure (``handler-failed``), the broker puts there what it
dead-lettered itself (a quorum queue's delivery limit, say). :class:`DeadLetterDesk` takes
what waits in the queue into the connector's database, acknowledging only once it is kept,
and works on that record:

- **list** and **show**: the decoded header, the code and the reason; the payload only when
  asked for (the desk's callers give it to authorised operators only), never for an
  encrypted message: it stays sealed to the subsystem's key, the desk does not open it;
- **resend**: a message whose handler failed, once the handler is fixed, goes back to the
  handler: its failed inbox entry is pending again, in the transaction that marks the dead
  letter resent. The bytes are never published again (that would be a replay, which the
  receive pipeline refuses as a duplicate). A message refused before it was accepted can only
  be made right by its sender, with a new message of its own: it learnt of the refusal from
  this subsystem's receipt (protocol.md §12), so resend refuses it (``not-resendable``);
- **discard**: with a reason.

Each resend and discard records who did it, when and why, beside the dead letter.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from connectors._errors import ConnectorError, TransportError
from connectors._store import (
    DEAD_LETTER_STATES,
    ConnectorStore,
    DeadLetter,
    DeadLetterAction,
    DeadLetterIn,
)
from connectors._transport import REASON_HEADER, REJECT_HEADER, InboundMessage, Keep
from exchange import Envelope, RejectError, parse_envelope

TakeIn = Callable[[Keep], int]
RESENDABLE = "handler-failed"
MAX_REASON = 500
MAX_PAGE = 1000
TAKE_ROUNDS = 20  # batches of the queue one call takes in at most

logger = logging.getLogger("connectors.dead_letters")


class DeadLetterError(ConnectorError):
    code = "dead-letter"


class UnknownDeadLetter(DeadLetterError):
    code = "unknown-dead-letter"


class DeadLetterResolved(DeadLetterError):
    """The dead letter was resent or discarded already."""

    code = "dead-letter-resolved"


class NotResendable(DeadLetterError):
    code = "not-resendable"


class BadDeadLetterInput(DeadLetterError):
    code = "invalid-input"


@dataclass(frozen=True, slots=True)
class DeadLetterView:
    """A dead letter as an operator sees it. ``header`` is the envelope's header as sent
    (None when the bytes are not an envelope: ``unreadable`` says why); ``payload`` is set
    only when asked for and readable, otherwise ``payload_note`` says why it is not."""

    seq: int
    message_id: str
    code: str
    reason: str
    arrived: str
    state: str
    size: int
    header: dict[str, Any] | None
    unreadable: str | None
    encrypted: bool
    resendable: bool
    payload: Any = None
    payload_note: str | None = None
    actions: tuple[DeadLetterAction, ...] = ()

    def summary(self) -> dict[str, Any]:
        """The list view: no header, no payload, no actions."""
        header = self.header or {}
        return {
            "seq": self.seq,
            "message_id": self.message_id,
            "code": self.code,
            "reason": self.reason,
            "arrived": self.arrived,
            "state": self.state,
            "type": header.get("type"),
            "kind": header.get("kind"),
            "sender": header.get("sender"),
            "encrypted": self.encrypted,
            "resendable": self.resendable,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "size": self.size,
            "header": self.header,
            "unreadable": self.unreadable,
            "payload": self.payload,
            "payload_note": self.payload_note,
            "actions": [a.as_dict() for a in self.actions],
        }


@dataclass(frozen=True, slots=True)
class DeadLetterPage:
    """A page of dead letters; ``queue_error`` says why the dead-letter queue could not be
    read just now (what was kept before is listed all the same); ``next_after`` is the
    ``after`` of the next page, None on the last."""

    letters: tuple[DeadLetterView, ...]
    queue_error: str | None = None
    next_after: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "dead_letters": [v.summary() for v in self.letters],
            "queue_error": self.queue_error,
            "next_after": self.next_after,
        }


def dead_letter_in(message: InboundMessage) -> DeadLetterIn:
    """What the dead-letter queue delivered, as kept: the connector's reject code and reason,
    or for a message the broker dead-lettered itself ``broker-<reason>`` (``broker-expired``,
    ``broker-delivery_limit``...) with the queue it left."""
    headers = message.headers
    code = headers.get(REJECT_HEADER)
    if isinstance(code, str) and code:
        reason = headers.get(REASON_HEADER)
        return DeadLetterIn(
            message.message_id or "", code, reason if isinstance(reason, str) else "", message.body
        )
    cause = headers.get("x-first-death-reason")
    queue = headers.get("x-first-death-queue")
    return DeadLetterIn(
        message.message_id or "",
        f"broker-{cause}" if isinstance(cause, str) and cause else "broker-unknown",
        f"dead-lettered by the broker from {queue}" if isinstance(queue, str) else "",
        message.body,
    )


class DeadLetterDesk:
    """The dead letters of one subsystem: ``take_in`` empties its dead-letter queue into
    ``store`` (None: only what is kept already, e.g. without a broker); ``reopened`` runs
    after a resend (a running connector takes the entry in hand at once)."""

    def __init__(
        self,
        store: ConnectorStore,
        take_in: TakeIn | None,
        reopened: Callable[[], object] = lambda: None,
    ) -> None:
        self._store = store
        self._take_in = take_in
        self._reopened = reopened

    def take_in(self) -> int:
        """Keep what waits in the dead-letter queue (at most ``TAKE_ROUNDS`` batches, so a
        queue filling meanwhile cannot hold the caller); returns how many wait anew. Raises
        :class:`~connectors.TransportError` when the queue cannot be read."""
        if self._take_in is None:
            return 0
        kept = 0

        def keep(messages: Sequence[InboundMessage]) -> None:
            nonlocal kept
            kept += self._store.keep_dead_letters([dead_letter_in(m) for m in messages])

        for _ in range(TAKE_ROUNDS):
            if not self._take_in(keep):
                break
        return kept

    def _refresh(self) -> str | None:
        """:meth:`take_in`, but a broker out of reach only costs the freshest letters: why
        is returned (and logged), what is kept stays readable."""
        try:
            self.take_in()
        except TransportError as exc:
            logger.warning("dead-letter queue not read: %s", exc.message)
            return exc.message
        return None

    def list(self, *, state: str | None = None, after: int = 0, limit: int = 100) -> DeadLetterPage:
        """Dead letters numbered after ``after`` (oldest first), taking the queue in first."""
        if state is not None and state not in DEAD_LETTER_STATES:
            raise BadDeadLetterInput(f"state {state!r} is none of {', '.join(DEAD_LETTER_STATES)}")
        if not 1 <= limit <= MAX_PAGE:
            raise BadDeadLetterInput(f"limit {limit} is not between 1 and {MAX_PAGE}")
        queue_error = self._refresh()
        found = self._store.dead_letters(state=state, after=after, limit=limit)
        return DeadLetterPage(
            tuple(_view(letter) for letter in found),
            queue_error,
            found[-1].seq if len(found) == limit else None,
        )

    def show(self, seq: int, *, payload: bool = False) -> DeadLetterView:
        """Dead letter ``seq`` with its header and actions; its payload if ``payload`` and it
        is not encrypted. Raises :class:`UnknownDeadLetter`."""
        return _view(self._found(seq), payload=payload)

    def discard(self, seq: int, *, actor: str, reason: str) -> DeadLetterView:
        """Discard waiting dead letter ``seq``; ``reason`` is required."""
        reason = _checked(reason, required=True)
        letter = self._found(seq)
        if letter.state != "waiting":
            raise _resolved(letter)
        done = self._store.resolve_dead_letter(
            seq, "discarded", actor=_checked_actor(actor), reason=reason
        )
        if done is None:  # resolved meanwhile
            raise _resolved(self._found(seq))
        return _view(done)

    def resend(self, seq: int, *, actor: str, reason: str = "") -> DeadLetterView:
        """Give the message of dead letter ``seq`` to its handler again (``handler-failed``
        only, and only an event or one-way message: a request was answered with the error).
        Raises :class:`NotResendable` or :class:`DeadLetterResolved`."""
        reason = _checked(reason, required=False)
        letter = self._found(seq)
        if letter.state != "waiting":
            raise _resolved(letter)
        envelope = _why_not_resendable(letter)
        if isinstance(envelope, str):
            raise NotResendable(envelope)
        done = self._store.resolve_dead_letter(
            seq,
            "resent",
            actor=_checked_actor(actor),
            reason=reason,
            reopen=envelope.header.id,
        )
        if done is None:
            fresh = self._found(seq)
            if fresh.state != "waiting":
                raise _resolved(fresh)
            state = self._store.inbox_state(envelope.header.id)
            raise NotResendable(
                f"message {envelope.header.id} is {state or 'not'} in the inbox, not failed: "
                "it was handled or sent to its handler again meanwhile"
            )
        self._reopened()
        return _view(done)

    def _found(self, seq: int) -> DeadLetter:
        letter = self._store.dead_letter(seq)
        if letter is None:
            raise UnknownDeadLetter(f"there is no dead letter {seq}")
        return letter


def _resolved(letter: DeadLetter) -> DeadLetterResolved:
    last = letter.actions[-1] if letter.actions else None
    by = f" by {last.actor} at {last.at}" if last is not None else ""
    return DeadLetterResolved(f"dead letter {letter.seq} was {letter.state} already{by}")


def _checked(reason: str, *, required: bool) -> str:
    reason = reason.strip()
    if required and not reason:
        raise BadDeadLetterInput("say why: a reason is required")
    if len(reason) > MAX_REASON:
        raise BadDeadLetterInput(f"a reason is at most {MAX_REASON} characters")
    return reason


def _checked_actor(actor: str) -> str:
    actor = actor.strip()
    if not actor or len(actor) > 200:
        raise BadDeadLetterInput("the actor is named, in at most 200 characters")
    return actor


def _envelope(letter: DeadLetter) -> Envelope | str:
    try:
        return parse_envelope(letter.envelope)
    except RejectError as exc:
        return f"{exc.code}: {exc}"


def _why_not_resendable(
    letter: DeadLetter, envelope: Envelope | str | None = None
) -> Envelope | str:
    """The envelope to give to its handler again, or why it cannot be (``envelope``: the
    letter's, when parsed already)."""
    envelope = _envelope(letter) if envelope is None else envelope
    if isinstance(envelope, str):
        return f"the dead letter is not an envelope ({envelope}): discard it"
    if letter.code != RESENDABLE:
        return (
            f"it was refused with {letter.code} before it was accepted: only its sender "
            f"{envelope.header.sender} can send a new message (the refusal is in its message "
            "status); discard this one"
        )
    if envelope.header.kind == "request":
        return (
            "it is a request, answered with handler-failed: its requester must ask again; "
            "discard this one"
        )
    return envelope


def _view(letter: DeadLetter, *, payload: bool = False) -> DeadLetterView:
    envelope = _envelope(letter)
    if isinstance(envelope, str):
        return DeadLetterView(
            letter.seq,
            letter.message_id,
            letter.code,
            letter.reason,
            letter.arrived,
            letter.state,
            len(letter.envelope),
            None,
            envelope,
            encrypted=False,
            resendable=False,
            payload_note="not an envelope" if payload else None,
            actions=letter.actions,
        )
    header = envelope.header
    encrypted = header.encryption is not None
    body, note = None, None
    if payload:
        body, note = _payload(envelope) if not encrypted else (None, "withheld: encrypted")
    resendable = not isinstance(_why_not_resendable(letter, envelope), str)
    return DeadLetterView(
        letter.seq,
        letter.message_id or header.id,
        letter.code,
        letter.reason,
        letter.arrived,
        letter.state,
        len(letter.envelope),
        dict(header.raw),
        None,
        encrypted=encrypted,
        resendable=letter.state == "waiting" and resendable,
        payload=body,
        payload_note=note,
        actions=letter.actions,
    )


def _payload(envelope: Envelope) -> tuple[Any, str | None]:
    if not envelope.digest_matches():
        return None, "withheld: the payload does not match the header's digest"
    with contextlib.suppress(orjson.JSONDecodeError):
        return orjson.loads(envelope.payload), None
    return None, "the payload is not JSON"


__all__ = [
    "BadDeadLetterInput",
    "DeadLetterDesk",
    "DeadLetterError",
    "DeadLetterPage",
    "DeadLetterResolved",
    "DeadLetterView",
    "NotResendable",
    "UnknownDeadLetter",
    "dead_letter_in",
]
