"""The receiving side: batches of deliveries through the pipeline of docs/protocol.md §8.

Per batch (group commit)::

    judge each (exchange.Inspector: steps 1-8; the verdict carries the parsed envelope)
    -> append every outcome to the message log, one durable flush (which signs a head)
    -> the receipts owed per sender, bound to that head; logged as sent, one more flush
    -> settle our waiting requests with the responses; note what receipts tell of ours
    -> record accepted ids as seen and their messages in the inbox, one transaction
    -> publish dead letters, error responses, repeated responses, receipts (confirmed)
    -> acknowledge the deliveries to the broker
    -> hand the accepted messages to the handler workers
"""

from __future__ import annotations

import contextlib
import logging
import queue
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from connectors._errors import ConnectorError, StoreError
from connectors._store import Accepted as StoreAccepted
from connectors._transport import (
    ATTEMPT_HEADER,
    DEAD_LETTER_EXCHANGE,
    REASON_HEADER,
    REJECT_HEADER,
    InboundMessage,
    OutboundMessage,
    direct_key,
)
from connectors.runtime._core import Core, log_entry
from connectors.runtime._handling import Handling
from connectors.runtime._outbox import Outbox
from connectors.runtime._pending import PendingRequests
from connectors.runtime._receipts import note_receipts, receipts_for
from exchange import (
    ERROR_TYPE,
    RECEIPT_TYPE,
    UNAUTHENTICATED_CODES,
    Accepted,
    DirectoryExpiredError,
    Duplicate,
    Envelope,
    ExchangeError,
    LogError,
    PayloadIssue,
    PayloadValidator,
    Rejected,
    SubsystemId,
    Verdict,
    parse_envelope,
)
from exchange.log import LogRecord, receipt_shape
from schemas import SchemaError, SchemaRegistry

logger = logging.getLogger("connectors.runtime")

# No signed error goes back to a sender that was not authenticated (malformed,
# unknown-sender, certificate-revoked, certificate-expired, bad-signature: whoever sent it
# may not be who it claims, and a signed answer would be an oracle for them), when the
# message was already answered (duplicate), or when the sender has no grant to the service
# (forbidden): it could not accept an answer from us, and its own connector refuses such a
# request before sending.
_NO_ERROR_REPLY = UNAUTHENTICATED_CODES | {"duplicate", "forbidden"}

Judged = list[tuple[InboundMessage, Verdict]]


def payload_validator(registry: SchemaRegistry) -> PayloadValidator:
    """The inspector's payload check (step 8): the registry's schemas, and the fixed shape
    of a signed error."""

    def validate(message_type: str, version: str, payload: object) -> list[PayloadIssue]:
        if message_type == ERROR_TYPE:
            return _error_shape(payload)
        if message_type == RECEIPT_TYPE:  # its records are read where they are used
            wrong = receipt_shape(payload)
            return [] if wrong is None else [PayloadIssue("$", wrong, "receipt")]
        try:
            report = registry.validate(message_type, version, payload)
        except SchemaError as exc:
            return [PayloadIssue("$", exc.message, exc.code)]
        return [PayloadIssue(e.path, e.message, e.keyword) for e in report.errors]

    return validate


def _error_shape(payload: object) -> list[PayloadIssue]:
    """protocol.md 4.3: {"code": str, "message": str, "errors": [...]}; other shapes would
    break the RemoteError raised to the waiting request."""
    if not isinstance(payload, dict) or not isinstance(payload.get("code"), str):
        return [PayloadIssue("$.code", "an error has a string code", "type")]
    if not isinstance(payload.get("message", ""), str):
        return [PayloadIssue("$.message", "an error's message is a string", "type")]
    if not isinstance(payload.get("errors", []), list):
        return [PayloadIssue("$.errors", "an error's errors are a list", "type")]
    return []


@dataclass
class _Logged:
    """A logged batch, sorted by what happens next."""

    accepted: list[tuple[bytes, Accepted]] = field(default_factory=list)  # for the handlers
    answers: list[tuple[bytes, Accepted]] = field(default_factory=list)  # for our requests
    receipts: list[Accepted] = field(default_factory=list)  # for our messages' status
    outgoing: list[OutboundMessage] = field(default_factory=list)  # dead letters, replies

    def take(self, body: bytes, accepted: Accepted) -> None:
        kind = accepted.envelope.header.kind
        if kind in ("response", "error"):
            self.answers.append((body, accepted))
        elif kind == "receipt":
            self.receipts.append(accepted)
        else:
            self.accepted.append((body, accepted))


class Receiver:
    """Takes deliveries from the transport's consumer and runs them through the pipeline."""

    def __init__(
        self, core: Core, outbox: Outbox, pending: PendingRequests, handling: Handling
    ) -> None:
        self._core = core
        self._outbox = outbox
        self._pending = pending
        self._handling = handling
        self.deliveries: queue.Queue[InboundMessage] = queue.Queue()

    def run(self) -> None:
        """The receive loop, until the connector stops and nothing is left to take."""
        core = self._core
        while not (core.stopping.is_set() and self.deliveries.empty()):
            try:
                first = self.deliveries.get(timeout=0.1)
            except queue.Empty:
                continue
            batch = [first]
            with contextlib.suppress(queue.Empty):
                while len(batch) < core.settings.batch:
                    batch.append(self.deliveries.get_nowait())
            try:
                self._process(batch)
            except (StoreError, LogError) as exc:  # the database is away: park and come back
                logger.warning("database unavailable (%s); %d deliveries wait", exc, len(batch))
                self._park(batch)
            except Exception:  # a bug must not kill the loop: give the deliveries back
                logger.exception("batch of %d deliveries failed; returning them", len(batch))
                with contextlib.suppress(ConnectorError):
                    core.transport.requeue([m.delivery_tag for m in batch])
                time.sleep(1.0)

    def _park(self, batch: list[InboundMessage]) -> None:
        """Send each delivery to the retry queue with a backoff that grows with its attempts
        (bounded by ``retry_cap``); it comes back then. Nothing is dropped."""
        transport = self._core.transport
        for message in batch:
            attempt = int(str(message.headers.get(ATTEMPT_HEADER, 0)))
            try:
                transport.retry_later(
                    self._core.me.slug, message, self._core.settings.backoff(attempt)
                )
            except ConnectorError:
                with contextlib.suppress(ConnectorError):
                    transport.requeue([message.delivery_tag])

    def _process(self, batch: list[InboundMessage]) -> None:
        core = self._core
        try:
            judged = self._recheck_seen(self._judge(batch))
        except DirectoryExpiredError as exc:
            logger.error("not consuming: %s", exc)  # noqa: TRY400 - expected, no traceback
            core.transport.requeue([m.delivery_tag for m in batch])
            time.sleep(core.settings.directory_poll)
            return
        logged = self._log(judged)
        accepted, answers = logged.accepted, logged.answers
        for _, answer in answers:
            core.metrics.count("received", answer.envelope.header.type)
        self._pending.settle(answers)
        if logged.receipts:
            note_receipts(core, logged.receipts, self._outbox.take_confirmed())
        if accepted:
            self._accept(accepted)
        if logged.outgoing:
            core.transport.publish(logged.outgoing)
        core.transport.ack([m.delivery_tag for m in batch])
        for _, outcome in accepted:
            core.metrics.count("received", outcome.envelope.header.type)
        self._handling.dispatch(accepted)

    def _log(self, judged: Judged) -> _Logged:
        """Append every verdict to the message log, one durable flush; then the receipts
        owed for the batch, bound to the head that flush signed, logged as sent too."""
        core = self._core
        logged = _Logged()
        owed: dict[SubsystemId, list[LogRecord]] = {}  # what each sender gets a receipt of
        with core.log_lock:
            for message, verdict in judged:
                if isinstance(verdict, Accepted):
                    record = core.log.append(log_entry("received", verdict.envelope, message.body))
                    logged.take(message.body, verdict)
                else:
                    code = verdict.error.code
                    record = core.log.append(
                        log_entry("rejected", verdict.envelope, message.body, code)
                    )
                    logged.outgoing += self._after_reject(message, verdict)
                if verdict.envelope is not None and _owes_receipt(verdict):
                    owed.setdefault(verdict.envelope.header.sender, []).append(record)
            core.flush()
            if owed:
                logged.outgoing += self._receipts(owed)
        return logged

    def _receipts(self, owed: Mapping[SubsystemId, list[LogRecord]]) -> list[OutboundMessage]:
        """The batch's receipts, logged as sent. Their failure (the log cannot prove what it
        just wrote) costs the receipts, never the batch, which is logged already."""
        try:
            sealed = receipts_for(self._core, self._outbox, owed)
            self._core.record(r.log_entry() for r in sealed)
        except ExchangeError as exc:
            logger.error("no receipts for this batch: %s", exc)  # noqa: TRY400 - the reason is in it
            return []
        return [r.outbound() for r in sealed]

    def _judge(self, batch: list[InboundMessage]) -> Judged:
        """The inspector's verdicts; a second copy of an id within the batch is a duplicate."""
        ids: set[str] = set()
        judged: Judged = []
        for message in batch:
            verdict = self._core.inspector.judge(message.body)
            if isinstance(verdict, Accepted):
                message_id = verdict.envelope.header.id
                if message_id in ids:
                    verdict = _duplicate(verdict.envelope)
                ids.add(message_id)
            self._count(verdict)
            judged.append((message, verdict))
        return judged

    def _recheck_seen(self, judged: Judged) -> Judged:
        """Ask the database, once for the batch, whether any accepted id was seen by another
        replica or before a restart; those become duplicates."""
        ids = [v.envelope.header.id for _, v in judged if isinstance(v, Accepted)]
        known = self._core.store.already_seen(ids)
        if not known:
            return judged
        out: Judged = []
        for message, verdict in judged:
            if isinstance(verdict, Accepted) and verdict.envelope.header.id in known:
                duplicate = _duplicate(verdict.envelope)
                self._count(duplicate)
                out.append((message, duplicate))
            else:
                out.append((message, verdict))
        return out

    def _count(self, verdict: Verdict) -> None:
        """Count a refusal by code, except a repeated answer: that is expected (a provider
        answers a repeated request again) and only logged."""
        if isinstance(verdict, Rejected) and not _repeated_answer(verdict):
            self._core.metrics.count("rejected", verdict.error.code)

    def _accept(self, accepted: list[tuple[bytes, Accepted]]) -> None:
        """Record the accepted messages as seen and pending. They are in hand before the
        commit, so a lease sweep running meanwhile never takes them over as a stopped
        replica's (their lease may be stamped seconds before a slow commit)."""
        ids = [a.envelope.header.id for _, a in accepted]
        self._handling.claim(ids)
        try:
            self._core.store.accept(
                [
                    StoreAccepted(message_id, self._core.inspector.keep_until(a.envelope), body)
                    for message_id, (body, a) in zip(ids, accepted, strict=True)
                ]
            )
        except BaseException:
            self._handling.unclaim(ids)
            raise

    def _after_reject(self, message: InboundMessage, verdict: Rejected) -> list[OutboundMessage]:
        """The dead letter, plus a signed error (or the stored response to a duplicate). A
        repeated response is expected (a provider answers a repeated request again) and is
        only logged."""
        if _repeated_answer(verdict):
            return []
        error = verdict.error
        out = [
            OutboundMessage(
                routing_key=self._core.me.slug,
                body=message.body,
                message_id=message.message_id or "",
                correlation_id=message.correlation_id,
                headers={REJECT_HEADER: error.code, REASON_HEADER: error.message[:500]},
                exchange=DEAD_LETTER_EXCHANGE,
            )
        ]
        request = verdict.envelope
        if request is None or request.header.kind != "request":
            return out
        if isinstance(error, Duplicate):
            out += self._repeat_response(request)
        elif error.code not in _NO_ERROR_REPLY:
            reply = self._error_reply(request, error.code, error.message, error.as_dict())
            if reply is not None:
                out.append(reply)
        return out

    def _repeat_response(self, request: Envelope) -> list[OutboundMessage]:
        stored = self._core.store.response_for(request.header.id)
        if stored is None:  # still being handled: the response will follow
            return []
        response = parse_envelope(stored)
        self._core.record([log_entry("sent", response, stored)], flush=False)
        header = response.header
        return [
            OutboundMessage(
                direct_key(request.header.sender.slug), stored, header.id, header.correlation_id
            )
        ]

    def _error_reply(
        self, request: Envelope, code: str, message: str, details: Mapping[str, object]
    ) -> OutboundMessage | None:
        payload = {"code": code, "message": message, "errors": details.get("errors", [])}
        try:
            reply = self._outbox.error(request, payload)
        except ConnectorError as exc:
            logger.warning("no error response for %s: %s", request.header.id, exc)
            return None
        self._core.record([reply.log_entry()], flush=False)
        return reply.outbound()


def _owes_receipt(verdict: Verdict) -> bool:
    """Events and one-way messages get a receipt, accepted or refused; not a refusal that
    gets no signed answer (an unauthenticated sender, a duplicate, a sender without a
    grant). Requests have their response or error; answers and receipts get none."""
    assert verdict.envelope is not None
    if verdict.envelope.header.kind not in ("event", "message"):
        return False
    return isinstance(verdict, Accepted) or verdict.error.code not in _NO_ERROR_REPLY


def _duplicate(envelope: Envelope) -> Rejected:
    return Rejected(Duplicate(f"message {envelope.header.id} was already received"), envelope)


def _repeated_answer(verdict: Rejected) -> bool:
    """A second copy of an answer or a receipt: expected (a provider answers a repeated
    request again; a redelivery), only logged."""
    return (
        isinstance(verdict.error, Duplicate)
        and verdict.envelope is not None
        and verdict.envelope.header.kind in ("response", "error", "receipt")
    )
