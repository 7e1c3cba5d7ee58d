"""The handler side: workers that run the agency's handlers on inbox entries, retries with
backoff, leases and the takeover of a stopped replica's entries, done marks in groups, and
the pull inbox of held messages."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson

from connectors._access_log import Access
from connectors._errors import AlreadyFinished, ConnectorError, SendRefused, StoreError
from connectors._handlers import Context, Delivery, Handler, Hold, Refuse, Transactional
from connectors._store import DeadLetterIn, InboxEntry, finish_pending_on
from connectors._transport import (
    OutboundMessage,
    direct_key,
)
from connectors.runtime._core import Core, log_entry
from connectors.runtime._outbox import Outbox, Sealed
from connectors.runtime._receipts import handled_receipts
from exchange import (
    UNSPECIFIED_PURPOSE,
    Accepted,
    Envelope,
    ExchangeError,
    Header,
    LegalBasis,
    SubsystemId,
    format_time,
    open_payload,
    parse_envelope,
    utcnow,
)
from exchange.log import Handled

logger = logging.getLogger("connectors.runtime")


class Handling:
    """Runs handlers on what the receiver accepted (or what the inbox kept over a restart)."""

    def __init__(
        self, core: Core, outbox: Outbox, handlers: dict[str, Handler], context: Context
    ) -> None:
        self._core = core
        self._outbox = outbox
        self.handlers = handlers
        self._context = context
        self._workers = ThreadPoolExecutor(
            core.settings.handler_workers, thread_name_prefix=f"handler-{core.me.slug}"
        )
        self._done: queue.Queue[_Finished | None] = queue.Queue()
        self._in_hand: set[str] = set()  # inbox entries this replica is handling
        self._lock = threading.Lock()

    # ---- lifecycle

    def start(self) -> threading.Thread:
        """Create the transactional handlers' tables; resume what the inbox holds
        unfinished; returns the finisher thread (started)."""
        for handler in self.handlers.values():
            if isinstance(handler, Transactional) and handler.tables is not None:
                self._core.store.create_tables(handler.tables)
        self.take_in_hand(self._core.store.pending())
        finisher = threading.Thread(
            target=self._finish_loop, name=f"finish-{self._core.me.slug}", daemon=True
        )
        finisher.start()
        return finisher

    def stop(self) -> None:
        """Let running handlers end; the finisher commits what they finished, then ends."""
        self._workers.shutdown(wait=True)
        self._done.put(None)

    # ---- what is in hand

    def claim(self, message_ids: Iterable[str]) -> None:
        """Entries about to be committed to the inbox by this replica are in hand first, so
        a lease sweep meanwhile never takes them over as a stopped replica's."""
        with self._lock:
            self._in_hand.update(message_ids)

    def unclaim(self, message_ids: Iterable[str]) -> None:
        with self._lock:
            self._in_hand.difference_update(message_ids)

    def take_in_hand(self, entries: Iterable[InboxEntry]) -> None:
        """Hand inbox entries to the workers, but none this replica already has in hand (a
        sweep that began before a batch was accepted may claim entries of it)."""
        with self._lock:
            fresh = [e for e in entries if e.message_id not in self._in_hand]
            self._in_hand.update(e.message_id for e in fresh)
        for entry in fresh:
            self._workers.submit(
                self._handle_safely, entry.message_id, entry.envelope, entry.attempts
            )

    def take_over(self) -> None:
        """Renew the lease of the entries in hand; take over the pending entries of a replica
        that stopped (untouched for ``takeover_after``)."""
        with self._lock:
            mine = set(self._in_hand)
        store = self._core.store
        try:
            store.touch(mine)
            stale = store.claim_stale(utcnow() - self._core.settings.takeover_after, mine)
        except StoreError as exc:
            logger.warning("inbox leases not renewed: %s", exc)
            return
        if stale:
            logger.warning("taking over %d inbox entries of a stopped replica", len(stale))
        self.take_in_hand(stale)

    def dispatch(self, accepted: Sequence[tuple[bytes, Accepted]]) -> None:
        """Hand a batch's accepted messages (already claimed) to the workers: one task per
        worker rather than per message, since submitting is not free."""
        workers = self._core.settings.handler_workers
        for share in range(min(workers, len(accepted))):
            self._workers.submit(self._handle_all, accepted[share::workers])

    def _put_down(self, message_id: str) -> None:
        with self._lock:
            self._in_hand.discard(message_id)

    # ---- running handlers

    def _handle_all(self, accepted: Sequence[tuple[bytes, Accepted]]) -> None:
        for body, outcome in accepted:
            self._handle_safely(outcome.envelope.header.id, body, 0, outcome)

    def _later(self, attempts: int, message_id: str, body: bytes, delay: float) -> None:
        timer = threading.Timer(
            delay, lambda: self._workers.submit(self._handle_safely, message_id, body, attempts)
        )
        timer.daemon = True
        timer.start()

    def _handle_safely(
        self, message_id: str, body: bytes, attempts: int, outcome: Accepted | None = None
    ) -> None:
        """:meth:`_handle`, but an outage while answering (database, broker) is retried
        later instead of being lost in a worker thread; the inbox keeps the entry pending."""
        try:
            if self._handle(message_id, body, attempts, outcome):
                self._put_down(message_id)
        except Exception:
            logger.exception("handling %s failed; trying again later", message_id)
            if self._core.stopping.is_set():
                return  # the entry stays pending in the inbox for the next start
            self._later(attempts + 1, message_id, body, self._core.settings.backoff(attempts + 1))

    def _reopen(self, body: bytes, outcome: Accepted | None) -> tuple[Envelope, Any]:
        if outcome is not None:
            return outcome.envelope, outcome.payload
        envelope = parse_envelope(body)
        return envelope, orjson.loads(open_payload(envelope, self._core.keys.decryption_keys()))

    def _handle(
        self, message_id: str, body: bytes, attempts: int, outcome: Accepted | None = None
    ) -> bool:
        """Run the handler of one inbox entry; retry with backoff; answer requests. False
        while the entry stays in hand: a retry of the handler is scheduled, or the finisher
        is still to mark it done."""
        store = self._core.store
        try:
            envelope, payload = self._reopen(body, outcome)
        except (ExchangeError, orjson.JSONDecodeError) as exc:
            store.finish(message_id, failed=f"cannot reopen the stored message: {exc}")
            return True
        header = envelope.header
        if header.kind == "request" and (stored := store.response_for(header.id)):
            # answered before, but the answer may not have left: send it (again), never
            # run the handler twice for it
            self._resend(stored, header)
            return True
        handler = self.handlers.get(header.type)
        if handler is None:
            refused = Refuse(f"{self._core.me} has no handler for {header.type}", "not-implemented")
            return self._finish(envelope, payload, None, refused)
        return self._run(handler, envelope, payload, body, attempts)

    def _run(
        self, handler: Handler, envelope: Envelope, payload: Any, body: bytes, attempts: int
    ) -> bool:
        """Run ``handler`` and finish its message by the outcome (see :meth:`_handle`)."""
        header = envelope.header
        delivery = _delivery(envelope, payload, attempts)
        started = time.perf_counter()
        result, refusal = None, None
        try:
            if isinstance(handler, Transactional):
                return self._in_transaction(handler, envelope, payload, delivery)
            result = handler(delivery, self._context)
        except Hold:
            self._core.store.hold(header.id)
            return True
        except Refuse as refused:
            refusal = refused
        except Exception as exc:  # noqa: BLE001 - the agency's code failed: retry, then give up loudly
            return self._retry(envelope, payload, body, exc)
        finally:
            seconds = time.perf_counter() - started
            self._core.metrics.handler_seconds.labels(header.type).observe(seconds)
        return self._finish(envelope, payload, result, refusal)

    def _finish(
        self, envelope: Envelope, payload: Any, result: Any, refusal: Refuse | None
    ) -> bool:
        """Finish a handled message; a request gets its response (or error) stored, logged
        as access to the subjects it was about, and sent. ``payload`` is the message's.
        False while the entry stays in hand, waiting for the finisher to mark it done."""
        header = envelope.header
        if header.kind != "request":
            if refusal is None:
                self._done.put(_Finished(header.id, header.sender))  # marked in groups
                return False  # in hand until then
            self._core.store.finish(header.id, failed=refusal.message)
            self._done.put(
                _Finished(header.id, header.sender, "failed", refusal.message, marked=True)
            )
            return True
        answer, outcome = self._answer(envelope, result, refusal)
        self._core.store.finish(
            header.id,
            response=(header.id, answer.data),
            accesses=self._accesses(envelope, payload, outcome),
        )
        self._outbox.emit([answer])
        return True

    def _in_transaction(
        self, handler: Transactional, envelope: Envelope, payload: Any, delivery: Delivery
    ) -> bool:
        """Run ``handler`` in the transaction that finishes its message: marked done (an
        event, a one-way message) or answered (a request: its response stored with the
        access records), so the handler's writes and the done mark commit together. Refuse,
        Hold and failures leave the ``with`` by an exception: all of it is rolled back. The
        response is sent once the commit holds; a repeated delivery of the request is
        answered from the stored response, never by running the handler again."""
        header = envelope.header
        answer, response, accesses = None, None, []
        try:
            with self._core.store.transaction() as tx:
                result = handler.handler(delivery, self._context, tx)
                if header.kind == "request":
                    answer, outcome = self._answer(envelope, result, None)
                    response = (header.id, answer.data)
                    accesses = self._accesses(envelope, payload, outcome)
                finish_pending_on(tx, header.id, response=response, accesses=accesses)
        except AlreadyFinished:
            logger.info("%s was finished elsewhere meanwhile; this run is rolled back", header.id)
            return True
        if answer is not None:
            self._outbox.emit([answer])
        else:
            self._done.put(_Finished(header.id, header.sender, marked=True))
        return True

    def _answer(self, request: Envelope, result: Any, refusal: Refuse | None) -> tuple[Sealed, str]:
        """The response (or error) to ``request`` and the outcome to record."""
        header = request.header
        if refusal is not None:
            payload = {"code": refusal.code, "message": refusal.message, "errors": []}
            return self._outbox.error(request, payload), refusal.code
        try:
            response = self._outbox.build(
                self._response_type(header.type),
                "response",
                header.sender,
                result,
                correlation_id=header.id,
                in_reply_to=request.digest,
            )
        except SendRefused as exc:  # the handler's answer breaks the response schema
            logger.error(  # noqa: TRY400 - the reason is in the message
                "handler of %s gave an invalid response: %s", header.type, exc.message
            )
            failed = {"code": "handler-failed", "message": "the provider could not answer"}
            return self._outbox.error(request, {**failed, "errors": []}), "handler-failed"
        return response, "answered"

    def _accesses(self, envelope: Envelope, payload: Any, outcome: str) -> list[Access]:
        """The access log records of a request answered with ``outcome``: one per data
        subject it is about, with the purpose it stated and its grant's legal basis."""
        access_log = self._core.access_log
        if access_log is None:
            return []
        subjects = access_log.subjects_of(envelope.header.type, payload)
        if not subjects:
            return []
        header = envelope.header
        me = self._core.me
        purpose = header.purpose or UNSPECIFIED_PURPOSE
        grant = next(
            (
                g
                for g in self._core.directory.grants_for(header.sender, header.type, me)
                if g.purpose == purpose
            ),
            None,
        )
        basis = grant.legal_basis if grant is not None else LegalBasis()
        at = format_time(utcnow())
        return [
            Access(
                holder=str(me),
                subject=subject,
                at=at,
                requester=str(header.sender),
                message_type=header.type,
                purpose=purpose,
                legal_basis=basis.text,
                legal_reference=basis.reference,
                message_id=header.id,
                outcome=outcome,
            )
            for subject in subjects
        ]

    def _resend(self, stored: bytes, request: Header) -> None:
        envelope = parse_envelope(stored)
        header = envelope.header
        self._core.record([log_entry("sent", envelope, stored)])
        self._core.transport.publish(
            [
                OutboundMessage(
                    direct_key(request.sender.slug), stored, header.id, header.correlation_id
                )
            ]
        )
        self._core.store.finish(request.id)

    def _response_type(self, request_type: str) -> str:
        for service in self._core.directory.services:
            if (
                service.subsystem == self._core.me
                and service.message_type == request_type
                and service.response_type
            ):
                return service.response_type
        return request_type.removesuffix(".request") + ".response"

    def _retry(self, envelope: Envelope, payload: Any, body: bytes, exc: Exception) -> bool:
        """Run the handler again later (False), or after the last attempt dead-letter the
        message as ``handler-failed`` (True: the entry is finished)."""
        core = self._core
        message_id = envelope.header.id
        attempts = core.store.attempted(message_id)
        if attempts < core.settings.max_attempts and not core.stopping.is_set():
            delay = core.settings.backoff(attempts - 1)
            logger.warning(
                "handler of %s failed (%s); attempt %d in %.1f s",
                envelope.header.type,
                exc,
                attempts + 1,
                delay,
            )
            self._later(attempts, message_id, body, delay)
            return False
        reason = f"handler failed {attempts} times: {exc}"
        logger.error("giving up on %s: %s", message_id, reason)
        core.metrics.count("rejected", "handler-failed")
        # kept as a dead letter at once, with the failure (not through the dead-letter queue,
        # where a failed publish would lose it from the operator's view)
        dead = DeadLetterIn(message_id, "handler-failed", reason[:500], body)
        if envelope.header.kind == "request":
            core.store.keep_dead_letters([dead])
            self._finish(envelope, payload, None, Refuse(reason, "handler-failed"))
        else:
            core.store.fail_as_dead_letter(message_id, reason, dead)
            self._done.put(
                _Finished(message_id, envelope.header.sender, "failed", reason, marked=True)
            )
        return True

    def _finish_loop(self) -> None:
        """Mark handled events and one-way messages done in groups (one commit for many),
        then tell their senders in receipts (protocol.md §12), gathered over at most
        ``_NOTIFY_EVERY`` seconds. The entries stay in hand (their leases renewed, so no
        replica takes them over) until the commit holds; a failed commit is tried again
        with backoff. A crash before the commit makes their handlers run again after
        restart, as for any plain handler interrupted mid-way: those must tolerate a repeat
        (at least once)."""
        batch: list[_Finished] = []
        told: list[_Finished] = []  # finished, their senders not yet told
        last_told = time.monotonic()
        failures = 0
        while True:
            wait = max(0.0, _NOTIFY_EVERY - (time.monotonic() - last_told)) if told else None
            ending = self._gather(batch, wait)
            unmarked = [f.message_id for f in batch if not f.marked]
            try:
                self._core.store.finish_many(unmarked)
            except StoreError as exc:
                failures += 1
                logger.warning("could not mark %d handled messages done yet: %s", len(batch), exc)
                if not ending:
                    time.sleep(min(self._core.settings.backoff(failures - 1), 1.0))
                    continue  # kept in hand, their leases renewed; tried again
            else:
                failures = 0
                for message_id in unmarked:
                    self._put_down(message_id)
                told, batch = told + batch, []
            if told and (ending or time.monotonic() - last_told >= _NOTIFY_EVERY):
                self._notify(told)
                told, last_told = [], time.monotonic()
            if ending:
                return

    def _gather(self, batch: list[_Finished], wait: float | None) -> bool:
        """Add what the finisher's queue holds to ``batch``, waiting for a first item (up to
        ``wait`` seconds; ``None``: as long as it takes) when ``batch`` is empty. True once
        the end of the queue came."""
        ending = False
        if not batch:
            try:
                first = self._done.get(timeout=wait)
            except queue.Empty:
                return False
            if first is None:
                ending = True
            else:
                batch.append(first)
        with contextlib.suppress(queue.Empty):
            while len(batch) < 1000:
                item = self._done.get_nowait()
                if item is None:
                    ending = True
                else:
                    batch.append(item)
        return ending

    def _notify(self, finished: Sequence[_Finished]) -> None:
        """Receipts of what the handlers made of these messages. Best effort: a sender that
        misses one still holds the receipt of the message's arrival."""
        notices = [(f.sender, Handled(f.message_id, f.outcome, f.reason[:500])) for f in finished]
        try:
            self._outbox.emit(handled_receipts(self._outbox, notices))
        except (ConnectorError, ExchangeError) as exc:  # the broker or the log is away
            logger.warning("handled receipts for %d messages not sent: %s", len(notices), exc)
        except Exception:  # never let a notice stop the done marks
            logger.exception("handled receipts for %d messages failed", len(notices))

    # ---- pull inbox

    def held(self, limit: int = 100) -> list[Delivery]:
        """Messages a handler held for the information system to pull, oldest first."""
        return [
            _delivery(*self._reopen(entry.envelope, None), entry.attempts)
            for entry in self._core.store.held(limit)
        ]


_NOTIFY_EVERY = 0.25  # seconds: handled receipts gather what finished meanwhile


@dataclass(frozen=True, slots=True)
class _Finished:
    """An event or one-way message its handler finished, for the finisher: to mark done in
    a group (unless ``marked`` already) and to tell its sender of."""

    message_id: str
    sender: SubsystemId
    outcome: str = "handled"  # or "failed"
    reason: str = ""
    marked: bool = False


def _delivery(envelope: Envelope, payload: Any, attempts: int) -> Delivery:
    header = envelope.header
    return Delivery(
        header.id,
        header.type,
        header.kind,
        header.sender,
        payload,
        header.correlation_id,
        attempts + 1,
        header.purpose,
    )
