"""The connector: sends with the sender's checks, receives through the pipeline of
docs/protocol.md §8 with durable effects, dispatches to handlers, and answers requests.

Receiving, per batch of deliveries (group commit)::

    inspect each (exchange.Inspector: steps 1-8)
    -> append every outcome to the message log, one durable flush
    -> record accepted ids as seen and their messages in the inbox, one transaction
    -> publish dead letters, error responses, repeated responses (confirmed)
    -> acknowledge the deliveries to the broker
    -> hand inbox entries to the handler workers; resolve waiting requests

So a delivery is acknowledged only once its outcome is durable; a redelivered message is a
duplicate and never reaches a handler twice; a message in the inbox survives a crash and is
handled after restart, or by another replica once its lease runs out (``takeover_after``).
Handlers run on worker threads; a failing handler is retried with backoff and, after the
last attempt, dead-lettered as ``handler-failed``.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Self

import orjson
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import x25519

from connectors._access_log import Access, AccessLog
from connectors._errors import (
    ConnectorError,
    RemoteError,
    RequestTimeout,
    SendRefused,
    StoreError,
    TransportError,
)
from connectors._handlers import Context, Delivery, Handler, Hold, Refuse
from connectors._metrics import Metrics
from connectors._store import Accepted as StoreAccepted
from connectors._store import ConnectorStore, InboxEntry
from connectors._transport import (
    ATTEMPT_HEADER,
    DEAD_LETTER_EXCHANGE,
    REASON_HEADER,
    REJECT_HEADER,
    InboundMessage,
    OutboundMessage,
    Transport,
    direct_key,
    event_key,
)
from exchange import (
    ENCRYPTED_CLASSIFICATIONS,
    ERROR_TYPE,
    UNAUTHENTICATED_CODES,
    UNSPECIFIED_PURPOSE,
    Accepted,
    AccessRequest,
    Directory,
    DirectoryError,
    DirectoryExpiredError,
    Duplicate,
    Envelope,
    ExchangeError,
    Forbidden,
    Header,
    Inspector,
    KeyRing,
    LegalBasis,
    LogError,
    PayloadIssue,
    Recipient,
    RejectError,
    Signer,
    SubsystemId,
    build_envelope,
    format_time,
    load_directory,
    new_message_id,
    open_payload,
    parse_envelope,
    utcnow,
)
from exchange.log import ConsistencyProof, Direction, LogEntry, MessageLog, SignedTreeHead
from schemas import SchemaError, SchemaRegistry

logger = logging.getLogger("connectors.runtime")

# No signed error goes back to a sender that was not authenticated (malformed,
# unknown-sender, certificate-revoked, certificate-expired, bad-signature: whoever sent it
# may not be who it claims, and a signed answer would be an oracle for them), when the
# message was already answered (duplicate), or when the sender has no grant to the service
# (forbidden): it could not accept an answer from us, and its own connector refuses such a
# request before sending.
_NO_ERROR_REPLY = UNAUTHENTICATED_CODES | {"duplicate", "forbidden"}
ERROR_SCHEMA_VERSION = "1.0.0"


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    """Tuning of one connector; the defaults suit a small agency."""

    prefetch: int = 512
    batch: int = 256
    handler_workers: int = 4
    max_attempts: int = 5
    retry_base: float = 0.5
    retry_cap: float = 30.0
    request_timeout: float = 10.0
    directory_poll: float = 5.0
    skew: timedelta = timedelta(seconds=30)
    max_age: timedelta = timedelta(minutes=10)
    ttl: timedelta = timedelta(minutes=5)
    # a pending inbox entry untouched this long belonged to a replica that stopped: another
    # replica takes it over (each renews the entries it has in hand twice as often)
    takeover_after: timedelta = timedelta(minutes=2)


DirectorySource = Callable[[], bytes]
"""Returns the latest signed directory bytes (from a file, a URL...)."""


@dataclass(frozen=True, slots=True)
class _Out:
    """A built message with what logging and publishing need, so nothing parses it again."""

    data: bytes
    message_id: str
    message_type: str
    recipient: str  # the recipient, or the topic of a broadcast event
    correlation_id: str | None
    routing_key: str


# How often a waiting request also looks for its response in the shared database (where
# another replica of this subsystem keeps a response that reached it).
_ANSWER_POLL = 0.1


def _result(header: Header, payload: Any) -> Any:
    """A response's payload, or the provider's refusal raised as :class:`RemoteError`."""
    if header.kind == "error":
        raise RemoteError(
            f"{header.sender} refused the request: {payload.get('message', '')}",
            str(payload.get("code")),
            list(payload.get("errors", [])),
        )
    return payload


@dataclass
class _Periodic:
    interval: float
    task: Callable[[], object]
    last: float = field(default_factory=time.monotonic)

    def run_if_due(self) -> None:
        if time.monotonic() - self.last < self.interval:
            return
        self.last = time.monotonic()
        try:
            self.task()
        except Exception:
            logger.exception("periodic task %s failed", self.task)


@dataclass
class _Pending:
    """A request of ours waiting for its response: only ``provider`` (the subsystem the
    request went to) may answer it, and only with the request's ``digest``."""

    digest: str
    provider: SubsystemId
    future: Future[Any] = field(default_factory=Future)

    def answered_by(self, header: Header) -> bool:
        """Whether ``header`` is an answer to this request: from the subsystem that was
        asked and naming the request's digest (another provider of the same service, which
        can read the digest off the broker, is no answer)."""
        return header.sender == self.provider and header.in_reply_to == self.digest


class Connector:
    """One subsystem's connector. ``start()`` it, use ``send``/``publish``/``request``,
    ``stop()`` it (or ``run_forever()``, which stops on SIGTERM/SIGINT)."""

    def __init__(  # noqa: PLR0913 - the composition root passes each collaborator explicitly
        self,
        *,
        subsystem: SubsystemId,
        keys: KeyRing,
        ca_certificate: x509.Certificate,
        directory_source: DirectorySource,
        transport: Transport,
        store: ConnectorStore,
        log: MessageLog,
        registry: SchemaRegistry,
        handlers: Mapping[str, Handler] | None = None,
        settings: RuntimeSettings | None = None,
        access_log: AccessLog | None = None,
    ) -> None:
        self.me = subsystem
        self.access_log = access_log
        self.keys = keys
        self.ca_certificate = ca_certificate
        self.transport = transport
        self.store = store
        self.log = log
        self.registry = registry
        self.handlers = dict(handlers or {})
        self.settings = settings or RuntimeSettings()
        self.metrics = Metrics()
        self._directory_source = directory_source
        self._directory = self._load_directory(None)
        self._inspector = Inspector(
            receiver=subsystem,
            directory=self._directory,
            decryption_keys=keys.decryption_keys(),
            validator=self._validate_incoming,
            seen=store,
            skew=self.settings.skew,
            max_age=self.settings.max_age,
        )
        self._deliveries: queue.Queue[InboundMessage] = queue.Queue()
        self._done: queue.Queue[str | None] = queue.Queue()
        self._pending: dict[str, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._log_lock = threading.RLock()  # the receive path logs replies while holding it
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._workers = ThreadPoolExecutor(
            self.settings.handler_workers, thread_name_prefix=f"handler-{subsystem.slug}"
        )
        self._started = False
        self._in_hand: set[str] = set()  # inbox entries this replica is handling
        self._hand_lock = threading.Lock()
        self._signer: Signer | None = None
        self._published_cache: tuple[Directory, frozenset[str]] | None = None
        self._periodic: list[_Periodic] = []

    # ------------------------------------------------------------------ lifecycle

    @property
    def directory(self) -> Directory:
        return self._directory

    def start(self) -> None:
        """Declare the topology, resume unfinished handlers, start consuming."""
        if self._started:
            return
        self._started = True
        self.transport.declare(self.me.slug, self._topics())
        self._take_in_hand(self.store.pending())
        for target, name in (
            (self._receive_loop, "receive"),
            (self._watch_directory, "dir"),
            (self._finish_loop, "finish"),
        ):
            thread = threading.Thread(target=target, name=f"{name}-{self.me.slug}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self.transport.consume(self.me.slug, self._deliveries.put, prefetch=self.settings.prefetch)
        logger.info("connector %s started (directory %s)", self.me, self._directory.serial)

    def stop(self) -> None:
        """Graceful: stop consuming, finish in-flight deliveries and handlers, flush the log."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        for thread in self._threads[:2]:  # the receive loop and the directory watcher
            thread.join(timeout=10)
        self._workers.shutdown(wait=True)
        self._done.put(None)  # the finisher commits what the handlers finished, then ends
        for thread in self._threads[2:]:
            thread.join(timeout=10)
        with self._log_lock:
            self.log.flush()
        self.transport.close()
        self.log.close()
        self.store.close()
        logger.info("connector %s stopped", self.me)

    def run_forever(self) -> None:
        """Run until SIGTERM or SIGINT, then stop gracefully."""
        done = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: done.set())
        self.start()
        done.wait()
        self.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ directory

    def _load_directory(self, held: int | None) -> Directory:
        try:
            directory = load_directory(
                self._directory_source(), self.ca_certificate, held_serial=held
            )
        except OSError as exc:
            raise DirectoryError(f"cannot read the directory: {exc}") from exc
        self.metrics.directory_serial.set(directory.serial)
        return directory

    def _topics(self) -> list[str]:
        return sorted(g.topic for g in self._directory.subscribe_grants if g.subscriber == self.me)

    def refresh_directory(self) -> bool:
        """Load the directory again; switch to it when newer. Returns whether it changed."""
        fresh = self._load_directory(self._directory.serial)
        if fresh.serial == self._directory.serial:
            return False
        topics_before = self._topics()
        self._directory = fresh
        self._inspector.directory = fresh
        if self._topics() != topics_before:
            self.transport.declare(self.me.slug, self._topics())
        logger.info("connector %s now uses directory %s", self.me, fresh.serial)
        return True

    def _take_in_hand(self, entries: Iterable[InboxEntry]) -> None:
        """Hand inbox entries to the handler workers, but none this replica already has in
        hand (a sweep that began before a batch was accepted may claim entries of it)."""
        with self._hand_lock:
            fresh = [e for e in entries if e.message_id not in self._in_hand]
            self._in_hand.update(e.message_id for e in fresh)
        for entry in fresh:
            self._workers.submit(
                self._handle_safely, entry.message_id, entry.envelope, entry.attempts
            )

    def _take_over(self) -> None:
        """Renew the lease of the entries in hand; take over the pending entries of a replica
        that stopped (untouched for ``takeover_after``)."""
        with self._hand_lock:
            mine = set(self._in_hand)
        try:
            self.store.touch(mine)
            stale = self.store.claim_stale(utcnow() - self.settings.takeover_after, mine)
        except StoreError as exc:
            logger.warning("inbox leases not renewed: %s", exc)
            return
        if stale:
            logger.warning("taking over %d inbox entries of a stopped replica", len(stale))
        self._take_in_hand(stale)

    def _watch_directory(self) -> None:
        """Look for a newer directory; renew the inbox leases and take over a stopped
        replica's entries; now and then forget replay ids past their window (the seen-store
        stays bounded: older messages are refused as stale anyway)."""
        pruned = swept = time.monotonic()
        while not self._stopping.wait(
            min(self.settings.directory_poll, self.settings.takeover_after.total_seconds() / 2)
        ):
            if time.monotonic() - swept >= self.settings.takeover_after.total_seconds() / 2:
                swept = time.monotonic()
                self._take_over()
            try:
                self.refresh_directory()
            except (ExchangeError, TransportError) as exc:
                logger.warning("directory not refreshed: %s", exc)
            for task in self._periodic:
                task.run_if_due()
            if time.monotonic() - pruned > self.settings.max_age.total_seconds():
                pruned = time.monotonic()
                try:
                    self.store.prune()
                except StoreError as exc:
                    logger.warning("seen-store not pruned: %s", exc)

    def every(self, seconds: float, task: Callable[[], object]) -> None:
        """Run ``task`` every ``seconds`` (from the directory watcher, at its pace); its
        failures are logged, never raised into the watcher."""
        self._periodic.append(_Periodic(seconds, task))

    # ------------------------------------------------------------------ the message log

    def log_head(self) -> SignedTreeHead:
        """The signed head of everything the message log holds (signed now if needed)."""
        with self._log_lock:
            self.log.flush()
            return self.log.signed_head()

    def log_consistency(self, old_size: int, new_size: int) -> ConsistencyProof:
        """The message log's consistency proof between two of its sizes."""
        with self._log_lock:
            return self.log.consistency_proof(old_size, new_size)

    # ------------------------------------------------------------------ sending

    def signer(self) -> Signer:
        """The current signing identity (cached per certificate: rotation changes it)."""
        key, cert = self.keys.signer()
        cached = self._signer
        if cached is None or cached.certificate is not cert:
            cached = self._signer = Signer(self.me, key, cert)
        return cached

    def _recipient(self, subsystem: SubsystemId) -> Recipient:
        entry = self._directory.encryption_certificate(subsystem, utcnow())
        if entry is None:
            return Recipient(subsystem)
        key = entry.info.public_key
        assert isinstance(key, x25519.X25519PublicKey)  # usage "encryption" guarantees it
        return Recipient(subsystem, key, entry.info.fingerprint)

    def _check_payload(self, message_type: str, payload: Any) -> tuple[str, str]:
        """(schema version, classification) of the type, once the payload is valid."""
        try:
            entry = self.registry.latest(message_type)
        except SchemaError as exc:
            raise SendRefused(exc.message, exc.code) from exc
        report = self.registry.validate(message_type, entry.version, payload)
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
                    f"{self.me} is not a publisher of {request.message_type}", "forbidden"
                )
            return
        try:
            self._inspector.policy().check(request)
        except Forbidden as exc:
            raise SendRefused(exc.message, exc.code) from exc

    def _build(  # noqa: PLR0913 - the header fields of one message
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
    ) -> _Out:
        """Validate, authorise, (encrypt,) sign: the message ready to log and publish."""
        version, classification = checked or self._check_payload(message_type, payload)
        recipient = None if to is None else self._recipient(to)
        self._check_grant(
            AccessRequest(
                sender=self.me,
                message_type=message_type,
                kind=kind,
                recipient=to,
                classification=classification,
                encrypted=classification in ENCRYPTED_CLASSIFICATIONS,
                receiver=to or self.me,
                at=utcnow(),
                purpose=purpose,
            )
        )
        return self._sign(
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

    def _purpose(self, message_type: str, to: SubsystemId, purpose: str | None) -> str | None:
        """The purpose a request or one-way message states: ``purpose`` if given; else the
        only purpose of the grants in force for it (none is stated for the unspecified
        purpose of an old grant); several to choose from is ``purpose-required``."""
        if purpose is not None:
            return purpose
        now = utcnow()
        purposes = {
            g.purpose for g in self._directory.grants_for(self.me, message_type, to) if g.live(now)
        }
        if len(purposes) > 1:
            raise SendRefused(
                f"{self.me} may send {message_type} to {to} for several purposes "
                f"({', '.join(sorted(purposes))}): state which one",
                "purpose-required",
            )
        chosen = purposes.pop() if purposes else None
        return None if chosen == UNSPECIFIED_PURPOSE else chosen

    def _sign(  # noqa: PLR0913 - the header fields of one message
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
    ) -> _Out:
        """Sign (and encrypt when classified so). Only the size is checked here (the callers
        made the other checks): an envelope larger than receivers take is refused
        ``too-large`` before it is logged or published, since every receiver would refuse it
        as ``malformed`` and the sender would never know."""
        message_id = new_message_id()
        body = orjson.dumps(payload)
        limit = self._inspector.max_size
        if len(body) > limit:  # before encrypting and signing what cannot go anyway
            raise _too_large(message_type, len(body), limit, "its payload alone")
        try:
            data = build_envelope(
                self.signer(),
                message_type=message_type,
                schema_version=version,
                kind=kind,  # type: ignore[arg-type]
                payload=body,
                classification=classification,
                recipient=recipient,
                ttl=self.settings.ttl,
                correlation_id=correlation_id,
                in_reply_to=in_reply_to,
                message_id=message_id,
                purpose=purpose,
            )
        except ExchangeError as exc:
            raise SendRefused(exc.message, exc.code) from exc
        if len(data) > limit:
            raise _too_large(message_type, len(data), limit, "its envelope")
        to = None if recipient is None else recipient.subsystem
        return _Out(
            data=data,
            message_id=message_id,
            message_type=message_type,
            recipient=str(to) if to is not None else message_type,
            correlation_id=correlation_id,
            routing_key=event_key(message_type) if to is None else direct_key(to.slug),
        )

    def _emit(self, messages: Sequence[_Out]) -> None:
        """Log as sent (durably), then publish and wait for the broker's confirms."""
        with self._log_lock:
            for out in messages:
                self.log.append(_sent_entry(out, self.me))
            self.log.flush()
        self.transport.publish(
            [
                OutboundMessage(out.routing_key, out.data, out.message_id, out.correlation_id)
                for out in messages
            ]
        )
        for out in messages:
            self.metrics.count("sent", out.message_type)

    def _published_types(self) -> frozenset[str]:
        """The event types this subsystem may publish, by the current directory."""
        cached = self._published_cache
        if cached is None or cached[0] is not self._directory:
            types = frozenset(
                s.message_type
                for s in self._directory.services
                if s.role == "publishes" and s.subsystem == self.me
            )
            cached = self._published_cache = (self._directory, types)
        return cached[1]

    def _resolve_target(self, to: str | SubsystemId) -> SubsystemId:
        try:
            return to if isinstance(to, SubsystemId) else SubsystemId.parse(to)
        except ExchangeError as exc:
            raise SendRefused(exc.message, exc.code) from exc

    def _require_fresh_directory(self) -> None:
        """Send nothing on an expired directory: its grants, revocations and certificates may
        be out of date (the watcher switches to a renewed one as soon as it appears)."""
        held = self._directory
        if held.is_stale():
            raise SendRefused(
                f"the directory (serial {held.serial}) expired at {format_time(held.expires)}; "
                "nothing is sent until a renewed one is picked up",
                "directory-expired",
            )

    def send(
        self, message_type: str, to: str | SubsystemId, payload: Any, *, purpose: str | None = None
    ) -> str:
        """A one-way message, for ``purpose`` (default: the grant's only one); returns its
        id once confirmed by the broker."""
        self._require_fresh_directory()
        target = self._resolve_target(to)
        stated = self._purpose(message_type, target, purpose)
        out = self._build(message_type, "message", target, payload, purpose=stated)
        self._emit([out])
        return out.message_id

    def send_many(
        self,
        message_type: str,
        to: str | SubsystemId,
        payloads: Iterable[Any],
        *,
        purpose: str | None = None,
    ) -> int:
        """Many one-way messages: one log flush and one confirmed publish for all."""
        self._require_fresh_directory()
        target = self._resolve_target(to)
        stated = self._purpose(message_type, target, purpose)
        messages = [
            self._build(message_type, "message", target, p, purpose=stated) for p in payloads
        ]
        self._emit(messages)
        return len(messages)

    def publish(self, message_type: str, payload: Any) -> str:
        """An event to every granted subscriber. A RESTRICTED or SECRET event goes as one
        encrypted copy per subscriber. Returns the id (of the first copy)."""
        self._require_fresh_directory()
        version, classification = self._check_payload(message_type, payload)
        if classification not in ENCRYPTED_CLASSIFICATIONS:
            out = self._build(
                message_type, "event", None, payload, checked=(version, classification)
            )
            self._emit([out])
            return out.message_id
        copies = [
            self._build(
                message_type, "event", subscriber, payload, checked=(version, classification)
            )
            for subscriber in self._directory.subscribers(message_type)
        ]
        if not copies:
            raise SendRefused(f"{message_type} has no subscribers to send to", "no-subscriber")
        self._emit(copies)
        return copies[0].message_id

    def publish_many(self, message_type: str, payloads: Iterable[Any]) -> int:
        """Many broadcast events: one log flush and one confirmed publish for all. Only for
        types that travel in clear (RESTRICTED events go one copy per subscriber)."""
        self._require_fresh_directory()
        messages = []
        for payload in payloads:
            version, classification = self._check_payload(message_type, payload)
            if classification in ENCRYPTED_CLASSIFICATIONS:
                raise SendRefused(f"{message_type} is encrypted: use publish()", "encrypted")
            messages.append(
                self._build(message_type, "event", None, payload, checked=(version, classification))
            )
        self._emit(messages)
        return len(messages)

    def request(
        self,
        message_type: str,
        to: str | SubsystemId,
        payload: Any,
        *,
        timeout: float | None = None,
        purpose: str | None = None,
    ) -> Any:
        """Send a request for ``purpose`` (default: the grant's only one) and wait for the
        response payload. Raises :class:`RemoteError` (the provider refused or failed),
        :class:`RequestTimeout` or :class:`SendRefused`."""
        self._require_fresh_directory()
        target = self._resolve_target(to)
        stated = self._purpose(message_type, target, purpose)
        out = self._build(message_type, "request", target, payload, purpose=stated)
        pending = _Pending(parse_envelope(out.data).digest, target)
        with self._pending_lock:
            self._pending[out.message_id] = pending
        wait = timeout or self.settings.request_timeout
        deadline = time.monotonic() + wait
        try:
            self._emit([out])
            while True:
                try:
                    return pending.future.result(
                        max(0.0, min(_ANSWER_POLL, deadline - time.monotonic()))
                    )
                except FutureTimeout:
                    found, payload = self._kept_answer(pending, out.message_id)
                    if found:
                        return payload
                    if time.monotonic() >= deadline:
                        raise
        except FutureTimeout as exc:
            raise RequestTimeout(
                f"no response from {target} to {message_type} within {wait:g} s"
            ) from exc
        finally:
            with self._pending_lock:
                self._pending.pop(out.message_id, None)

    # ------------------------------------------------------------------ receiving

    def _validate_incoming(
        self, message_type: str, version: str, payload: Any
    ) -> list[PayloadIssue]:
        if message_type == ERROR_TYPE:
            # protocol.md 4.3: {"code": str, "message": str, "errors": [...]}; other shapes
            # would break the RemoteError raised to the waiting request
            if not isinstance(payload, dict) or not isinstance(payload.get("code"), str):
                return [PayloadIssue("$.code", "an error has a string code", "type")]
            if not isinstance(payload.get("message", ""), str):
                return [PayloadIssue("$.message", "an error's message is a string", "type")]
            if not isinstance(payload.get("errors", []), list):
                return [PayloadIssue("$.errors", "an error's errors are a list", "type")]
            return []
        try:
            report = self.registry.validate(message_type, version, payload)
        except SchemaError as exc:
            return [PayloadIssue("$", exc.message, exc.code)]
        return [PayloadIssue(e.path, e.message, e.keyword) for e in report.errors]

    def _receive_loop(self) -> None:
        while not (self._stopping.is_set() and self._deliveries.empty()):
            try:
                first = self._deliveries.get(timeout=0.1)
            except queue.Empty:
                continue
            batch = [first]
            with contextlib.suppress(queue.Empty):
                while len(batch) < self.settings.batch:
                    batch.append(self._deliveries.get_nowait())
            try:
                self._process(batch)
            except (StoreError, LogError) as exc:  # the database is away: park and come back
                logger.warning("database unavailable (%s); %d deliveries wait", exc, len(batch))
                self._park(batch)
            except Exception:  # a bug must not kill the loop: give the deliveries back
                logger.exception("batch of %d deliveries failed; returning them", len(batch))
                with contextlib.suppress(ConnectorError):
                    self.transport.requeue([m.delivery_tag for m in batch])
                time.sleep(1.0)

    def _park(self, batch: list[InboundMessage]) -> None:
        """Send each delivery to the retry queue with a backoff that grows with its attempts
        (bounded by ``retry_cap``); it comes back then. Nothing is dropped."""
        for message in batch:
            attempt = int(str(message.headers.get(ATTEMPT_HEADER, 0)))
            delay = self._backoff(attempt)
            try:
                self.transport.retry_later(self.me.slug, message, delay)
            except ConnectorError:
                with contextlib.suppress(ConnectorError):
                    self.transport.requeue([message.delivery_tag])

    def _process(self, batch: list[InboundMessage]) -> None:
        accepted: list[tuple[InboundMessage, Accepted]] = []
        outgoing: list[OutboundMessage] = []
        answers: list[tuple[InboundMessage, Accepted, _Pending | None]] = []
        batch_ids: set[str] = set()
        try:
            judged = [(m, self._judge(m, batch_ids)) for m in batch]
            judged = self._recheck_seen(judged)
        except DirectoryExpiredError as exc:
            logger.error("not consuming: %s", exc)  # noqa: TRY400 - expected, no traceback
            self.transport.requeue([m.delivery_tag for m in batch])
            time.sleep(self.settings.directory_poll)
            return
        with self._log_lock:
            for message, outcome in judged:
                if isinstance(outcome, Accepted):
                    self.log.append(_received_entry(outcome.envelope, message.body))
                    kind = outcome.envelope.header.kind
                    if kind in ("response", "error"):
                        answers.append((message, outcome, self._match_request(outcome)))
                    else:
                        accepted.append((message, outcome))
                else:
                    self.log.append(_log_entry("rejected", message.body, outcome.code))
                    outgoing += self._after_reject(message, outcome)
            self.log.flush()
            self.metrics.log_size.set(self.log.size)
        self._settle(answers)
        if accepted:
            self._accept(accepted)
        if outgoing:
            self.transport.publish(outgoing)
        self.transport.ack([m.delivery_tag for m in batch])
        for _, outcome in accepted:
            self.metrics.count("received", outcome.envelope.header.type)
        # one task per worker rather than per message: submitting is not free
        workers = self.settings.handler_workers
        for share in range(min(workers, len(accepted))):
            self._workers.submit(self._handle_all, accepted[share::workers])

    def _accept(self, accepted: list[tuple[InboundMessage, Accepted]]) -> None:
        """Record the accepted messages as seen and pending. They are in hand before the
        commit, so a lease sweep running meanwhile never takes them over as a stopped
        replica's (their lease may be stamped seconds before a slow commit)."""
        ids = [a.envelope.header.id for _, a in accepted]
        with self._hand_lock:
            self._in_hand.update(ids)
        try:
            self.store.accept(
                [
                    StoreAccepted(message_id, self._inspector.keep_until(a.envelope), m.body)
                    for message_id, (m, a) in zip(ids, accepted, strict=True)
                ]
            )
        except BaseException:
            with self._hand_lock:
                self._in_hand.difference_update(ids)
            raise

    def _recheck_seen(
        self, judged: list[tuple[InboundMessage, Accepted | RejectError]]
    ) -> list[tuple[InboundMessage, Accepted | RejectError]]:
        """Ask the database, once for the batch, whether any accepted id was seen by another
        replica or before a restart; those become duplicates."""
        ids = [o.envelope.header.id for _, o in judged if isinstance(o, Accepted)]
        known = self.store.already_seen(ids)
        if not known:
            return judged
        out: list[tuple[InboundMessage, Accepted | RejectError]] = []
        for message, outcome in judged:
            if isinstance(outcome, Accepted) and outcome.envelope.header.id in known:
                self._count_duplicate(outcome.envelope)
                message_id = outcome.envelope.header.id
                out.append((message, Duplicate(f"message {message_id} was already received")))
                continue
            out.append((message, outcome))
        return out

    def _count_duplicate(self, envelope: Envelope) -> None:
        """Count a refused duplicate, except a repeated answer: that is expected (a provider
        answers a repeated request again) and only logged."""
        if envelope.header.kind not in ("response", "error"):
            self.metrics.count("rejected", "duplicate")

    def _judge(self, message: InboundMessage, batch_ids: set[str]) -> Accepted | RejectError:
        try:
            outcome = self._inspector.inspect(message.body)
        except RejectError as exc:
            if isinstance(exc, Duplicate):
                with contextlib.suppress(RejectError):
                    self._count_duplicate(parse_envelope(message.body))
            else:
                self.metrics.count("rejected", exc.code)
            return exc
        message_id = outcome.envelope.header.id
        if message_id in batch_ids:
            self._count_duplicate(outcome.envelope)
            return Duplicate(f"message {message_id} was already received")
        batch_ids.add(message_id)
        return outcome

    def _match_request(self, outcome: Accepted) -> _Pending | None:
        header = outcome.envelope.header
        with self._pending_lock:
            pending = self._pending.get(header.correlation_id or "")
        if pending is not None and not pending.answered_by(header):
            logger.warning("response %s answers a different request; ignored", header.id)
            return None
        return pending

    def _settle(self, answers: list[tuple[InboundMessage, Accepted, _Pending | None]]) -> None:
        """Responses settle our own waiting requests as soon as they are in the log. One that
        no request of ours waits for may be another replica's (replicas share the queue): it
        is kept in the shared database, where that replica takes it."""
        for message, outcome, pending in answers:
            header = outcome.envelope.header
            self.metrics.count("received", header.type)
            self.store.remember(header.id)
            if pending is not None:
                self._answer(pending, outcome)
            elif header.correlation_id and not self._waiting(header.correlation_id):
                self.store.keep_answer(header.correlation_id, message.body)

    def _waiting(self, correlation_id: str) -> bool:
        with self._pending_lock:
            return correlation_id in self._pending

    def _answer(self, pending: _Pending, outcome: Accepted) -> None:
        try:
            pending.future.set_result(_result(outcome.envelope.header, outcome.payload))
        except RemoteError as refusal:
            pending.future.set_exception(refusal)

    def _kept_answer(self, pending: _Pending, request_id: str) -> tuple[bool, Any]:
        """The response another replica received and kept for us: (found, payload). It was
        verified by that replica's pipeline and logged there; a response to other bytes than
        ours is dropped. Raises :class:`RemoteError` for a refusal."""
        body = self.store.take_answer(request_id)
        if body is None:
            return False, None
        envelope = parse_envelope(body)
        if not pending.answered_by(envelope.header):
            logger.warning("kept response %s answers a different request", envelope.header.id)
            return False, None
        payload = orjson.loads(open_payload(envelope, self.keys.decryption_keys()))
        return True, _result(envelope.header, payload)

    def _after_reject(self, message: InboundMessage, error: RejectError) -> list[OutboundMessage]:
        """The dead letter, plus a signed error (or the stored response to a duplicate). A
        repeated response is expected (a provider answers a repeated request again) and is
        only logged."""
        if isinstance(error, Duplicate) and _kind(message.body) in ("response", "error"):
            return []
        out = [
            OutboundMessage(
                routing_key=self.me.slug,
                body=message.body,
                message_id=message.message_id or "",
                correlation_id=message.correlation_id,
                headers={REJECT_HEADER: error.code, REASON_HEADER: error.message[:500]},
                exchange=DEAD_LETTER_EXCHANGE,
            )
        ]
        if isinstance(error, Duplicate):
            out += self._repeat_response(message)
        elif error.code not in _NO_ERROR_REPLY:
            reply = self._error_reply(message.body, error.code, error.message, error.as_dict())
            if reply is not None:
                out.append(reply)
        return out

    def _repeat_response(self, message: InboundMessage) -> list[OutboundMessage]:
        try:
            envelope = parse_envelope(message.body)
        except RejectError:
            return []
        if envelope.header.kind != "request":
            return []
        stored = self.store.response_for(envelope.header.id)
        if stored is None:  # still being handled: the response will follow
            return []
        with self._log_lock:
            self.log.append(_log_entry("sent", stored))
        header = parse_envelope(stored).header
        return [
            OutboundMessage(
                direct_key(envelope.header.sender.slug), stored, header.id, header.correlation_id
            )
        ]

    def _error_reply(
        self, body: bytes, code: str, message: str, details: Mapping[str, object]
    ) -> OutboundMessage | None:
        try:
            request = parse_envelope(body)
        except RejectError:
            return None
        if request.header.kind != "request":
            return None
        payload = {"code": code, "message": message, "errors": details.get("errors", [])}
        try:
            out = self._build_error(request, payload)
        except ConnectorError as exc:
            logger.warning("no error response for %s: %s", request.header.id, exc)
            return None
        with self._log_lock:
            self.log.append(_sent_entry(out, self.me))
        return OutboundMessage(out.routing_key, out.data, out.message_id, out.correlation_id)

    def _build_error(self, request: Envelope, payload: Mapping[str, object]) -> _Out:
        return self._sign(
            ERROR_TYPE,
            ERROR_SCHEMA_VERSION,
            "error",
            payload,
            classification="INTERNAL",
            recipient=Recipient(request.header.sender),
            correlation_id=request.header.id,
            in_reply_to=request.digest,
        )

    # ------------------------------------------------------------------ handlers

    def _backoff(self, attempt: int) -> float:
        """Seconds before try ``attempt + 1``: doubling from ``retry_base``, capped."""
        return float(min(self.settings.retry_cap, self.settings.retry_base * 2**attempt))

    def _handle_all(self, accepted: list[tuple[InboundMessage, Accepted]]) -> None:
        for message, outcome in accepted:
            self._handle_safely(outcome.envelope.header.id, message.body, 0, outcome)

    def _put_down(self, message_id: str) -> None:
        with self._hand_lock:
            self._in_hand.discard(message_id)

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
            if self._stopping.is_set():
                return  # the entry stays pending in the inbox for the next start
            timer = threading.Timer(
                self._backoff(attempts + 1),
                lambda: self._workers.submit(self._handle_safely, message_id, body, attempts + 1),
            )
            timer.daemon = True
            timer.start()

    def _handle(
        self,
        message_id: str,
        body: bytes,
        attempts: int,
        outcome: Accepted | None = None,
    ) -> bool:
        """Run the handler of one inbox entry; retry with backoff; answer requests. False
        while the entry stays in hand: a retry of the handler is scheduled, or the finisher
        is still to mark it done."""
        try:
            envelope = outcome.envelope if outcome else parse_envelope(body)
            payload = (
                outcome.payload
                if outcome
                else orjson.loads(open_payload(envelope, self.keys.decryption_keys()))
            )
        except (ExchangeError, orjson.JSONDecodeError) as exc:
            self.store.finish(message_id, failed=f"cannot reopen the stored message: {exc}")
            return True
        header = envelope.header
        if header.kind == "request" and (stored := self.store.response_for(header.id)):
            # answered before, but the answer may not have left: send it (again), never
            # run the handler twice for it
            self._resend(stored, header.sender)
            return True
        handler = self.handlers.get(header.type)
        delivery = Delivery(
            header.id,
            header.type,
            header.kind,
            header.sender,
            payload,
            header.correlation_id,
            attempts + 1,
            header.purpose,
        )
        started = time.perf_counter()
        if handler is None:
            return self._finish_request(
                envelope,
                payload,
                None,
                Refuse(f"{self.me} has no handler for {header.type}", "not-implemented"),
            )
        result, refusal = None, None
        try:
            result = handler(delivery, _HandlerContext(self))
        except Hold:
            self.store.hold(header.id)
            return True
        except Refuse as refused:
            refusal = refused
        except Exception as exc:  # noqa: BLE001 - the agency's code failed: retry, then give up loudly
            return self._retry(envelope, payload, body, exc)
        finally:
            self.metrics.handler_seconds.labels(header.type).observe(time.perf_counter() - started)
        return self._finish_request(envelope, payload, result, refusal)

    def _finish_request(
        self, envelope: Envelope, payload: Any, result: Any, refusal: Refuse | None
    ) -> bool:
        """Finish a handled message; a request gets its response (or error) stored, logged
        as access to the subjects it was about, and sent. ``payload`` is the message's.
        False while the entry stays in hand, waiting for the finisher to mark it done."""
        header = envelope.header
        if header.kind != "request":
            if refusal is None:
                self._done.put(header.id)  # marked done in groups by the finisher
                return False  # in hand until then
            self.store.finish(header.id, failed=refusal.message)
            return True
        outcome = "answered" if refusal is None else refusal.code
        try:
            if refusal is None:
                response_type = self._response_type(header.type)
                data = self._build(
                    response_type,
                    "response",
                    header.sender,
                    result,
                    correlation_id=header.id,
                    in_reply_to=envelope.digest,
                )
            else:
                data = self._build_error(
                    envelope, {"code": refusal.code, "message": refusal.message, "errors": []}
                )
        except SendRefused as exc:  # the handler's answer breaks the response schema
            logger.error(  # noqa: TRY400 - the reason is in the message
                "handler of %s gave an invalid response: %s", header.type, exc.message
            )
            data = self._build_error(
                envelope,
                {
                    "code": "handler-failed",
                    "message": "the provider could not answer",
                    "errors": [],
                },
            )
            outcome = "handler-failed"
        self.store.finish(
            header.id,
            response=(header.id, data.data),
            accesses=self._accesses(envelope, payload, outcome),
        )
        self._emit([data])
        return True

    def _accesses(self, envelope: Envelope, payload: Any, outcome: str) -> list[Access]:
        """The access log records of a request answered with ``outcome``: one per data
        subject it is about, with the purpose it stated and its grant's legal basis."""
        if self.access_log is None:
            return []
        subjects = self.access_log.subjects_of(envelope.header.type, payload)
        if not subjects:
            return []
        header = envelope.header
        purpose = header.purpose or UNSPECIFIED_PURPOSE
        grant = next(
            (
                g
                for g in self._directory.grants_for(header.sender, header.type, self.me)
                if g.purpose == purpose
            ),
            None,
        )
        basis = grant.legal_basis if grant is not None else LegalBasis()
        at = format_time(utcnow())
        return [
            Access(
                holder=str(self.me),
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

    def _resend(self, stored: bytes, to: SubsystemId) -> None:
        header = parse_envelope(stored).header
        with self._log_lock:
            self.log.append(_log_entry("sent", stored))
            self.log.flush()
        self.transport.publish(
            [OutboundMessage(direct_key(to.slug), stored, header.id, header.correlation_id)]
        )
        self.store.finish(header.correlation_id or header.id)

    def _response_type(self, request_type: str) -> str:
        for service in self._directory.services:
            if (
                service.subsystem == self.me
                and service.message_type == request_type
                and service.response_type
            ):
                return service.response_type
        return request_type.removesuffix(".request") + ".response"

    def _finish_loop(self) -> None:
        """Mark handled events and one-way messages done in groups (one commit for many).
        The entries stay in hand (their leases renewed, so no replica takes them over) until
        the commit holds; a failed commit is tried again with backoff. A crash before the
        commit makes their handlers run again after restart, as for any handler interrupted
        mid-way: handlers must tolerate a repeat (at least once)."""
        batch: list[str] = []
        failures = 0
        ending = False
        while True:
            if not batch:
                first = self._done.get()
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
            try:
                self.store.finish_many(batch)
            except StoreError as exc:
                failures += 1
                logger.warning("could not mark %d handled messages done yet: %s", len(batch), exc)
                if not ending:
                    time.sleep(min(self._backoff(failures - 1), 1.0))
                    continue  # kept in hand, their leases renewed; tried again
            else:
                failures = 0
                for message_id in batch:
                    self._put_down(message_id)
                batch = []
            if ending:
                return

    def _retry(self, envelope: Envelope, payload: Any, body: bytes, exc: Exception) -> bool:
        """Run the handler again later (False), or after the last attempt dead-letter the
        message as ``handler-failed`` (True: the entry is finished)."""
        message_id = envelope.header.id
        attempts = self.store.attempted(message_id)
        if attempts < self.settings.max_attempts and not self._stopping.is_set():
            delay = self._backoff(attempts - 1)
            logger.warning(
                "handler of %s failed (%s); attempt %d in %.1f s",
                envelope.header.type,
                exc,
                attempts + 1,
                delay,
            )
            timer = threading.Timer(
                delay, lambda: self._workers.submit(self._handle_safely, message_id, body, attempts)
            )
            timer.daemon = True
            timer.start()
            return False
        reason = f"handler failed {attempts} times: {exc}"
        logger.error("giving up on %s: %s", message_id, reason)
        self.metrics.count("rejected", "handler-failed")
        dead = OutboundMessage(
            self.me.slug,
            body,
            message_id,
            envelope.header.correlation_id,
            {REJECT_HEADER: "handler-failed", REASON_HEADER: reason[:500]},
            DEAD_LETTER_EXCHANGE,
        )
        with contextlib.suppress(ConnectorError):
            self.transport.publish([dead])
        if envelope.header.kind == "request":
            self._finish_request(envelope, payload, None, Refuse(reason, "handler-failed"))
        else:
            self.store.finish(message_id, failed=reason)
        return True

    def context(self) -> Context:
        """What a handler gets: this connector's request, send and publish (also for
        application code that acts on the bus outside a handler)."""
        return _HandlerContext(self)

    # ------------------------------------------------------------------ pull inbox

    def held(self, limit: int = 100) -> list[Delivery]:
        """Messages a handler held for the information system to pull, oldest first."""
        out = []
        for entry in self.store.held(limit):
            envelope = parse_envelope(entry.envelope)
            payload = orjson.loads(open_payload(envelope, self.keys.decryption_keys()))
            header = envelope.header
            out.append(
                Delivery(
                    header.id,
                    header.type,
                    header.kind,
                    header.sender,
                    payload,
                    header.correlation_id,
                    entry.attempts + 1,
                    header.purpose,
                )
            )
        return out

    def release(self, message_ids: Sequence[str]) -> int:
        """The information system has the pulled messages: they are done."""
        return self.store.release(message_ids)

    # ------------------------------------------------------------------ health

    def health(self) -> dict[str, object]:
        """Broker, database and directory state, for /health."""
        now = utcnow()
        return {
            "subsystem": str(self.me),
            "database": self.store.ping(),
            "directory": {
                "serial": self._directory.serial,
                "expires": self._directory.expires.isoformat(),
                "fresh": not self._directory.is_stale(now),
            },
            "log_records": self.log.size,
            "inbox": self.store.counts(),
        }


def _too_large(message_type: str, size: int, limit: int, what: str) -> SendRefused:
    return SendRefused(
        f"{message_type} not sent: {what} is {size} bytes, over the {limit} bytes every "
        "receiver accepts (protocol.md, receive step 1); send less per message",
        "too-large",
    )


def _kind(body: bytes) -> str | None:
    try:
        return parse_envelope(body).header.kind
    except RejectError:
        return None


def _sent_entry(out: _Out, me: SubsystemId) -> LogEntry:
    return LogEntry("sent", out.message_id, out.message_type, str(me), out.recipient, out.data)


def _received_entry(envelope: Envelope, body: bytes) -> LogEntry:
    header = envelope.header
    recipient = str(header.recipient) if header.recipient is not None else header.topic or ""
    return LogEntry("received", header.id, header.type, str(header.sender), recipient, body)


def _log_entry(direction: Direction, data: bytes, code: str | None = None) -> LogEntry:
    """The log entry of a message; bytes that do not parse are logged as they came."""
    try:
        header = parse_envelope(data).header
    except RejectError:
        return LogEntry(direction, "0" * 32, "unknown", "unknown", "unknown", data, code)
    recipient = str(header.recipient) if header.recipient is not None else header.topic or ""
    return LogEntry(direction, header.id, header.type, str(header.sender), recipient, data, code)


class _HandlerContext(Context):
    """What a handler may do, on behalf of its connector."""

    def __init__(self, connector: Connector) -> None:
        self._connector = connector

    @property
    def me(self) -> SubsystemId:
        return self._connector.me

    def request(
        self,
        message_type: str,
        to: str | SubsystemId,
        payload: Any,
        *,
        timeout: float = 10.0,
        purpose: str | None = None,
    ) -> Any:
        return self._connector.request(message_type, to, payload, timeout=timeout, purpose=purpose)

    def send(
        self, message_type: str, to: str | SubsystemId, payload: Any, *, purpose: str | None = None
    ) -> str:
        return self._connector.send(message_type, to, payload, purpose=purpose)

    def publish(self, message_type: str, payload: Any) -> str:
        return self._connector.publish(message_type, payload)
