"""The connector: a thin façade over its parts (outbox, receiver, pending requests,
handling), with their lifecycle and the directory watcher."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Self

from cryptography import x509

from connectors._access_log import AccessLog
from connectors._dead_letters import DeadLetterDesk
from connectors._errors import RequestTimeout, StoreError, TransportError
from connectors._handlers import Context, Delivery, Handler
from connectors._metrics import Metrics
from connectors._store import ConnectorStore
from connectors._transport import Transport
from connectors.runtime._core import Core
from connectors.runtime._handling import Handling
from connectors.runtime._inbound import Receiver, payload_validator
from connectors.runtime._outbox import Outbox
from connectors.runtime._pending import PendingRequests
from connectors.runtime._receipts import MessageStatus, message_status
from connectors.runtime._settings import DirectorySource, RuntimeSettings
from exchange import (
    Directory,
    DirectoryError,
    ExchangeError,
    Inspector,
    KeyRing,
    Signer,
    SubsystemId,
    load_directory,
)
from exchange.log import ConsistencyProof, MessageLog, SignedTreeHead
from schemas import SchemaRegistry

logger = logging.getLogger("connectors.runtime")


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
        self.ca_certificate = ca_certificate
        self._directory_source = directory_source
        settings = settings or RuntimeSettings()
        metrics = Metrics()
        inspector = Inspector(
            receiver=subsystem,
            directory=self._load_directory(None, metrics),
            decryption_keys=keys.decryption_keys(),
            validator=payload_validator(registry),
            seen=store,
            skew=settings.skew,
            max_age=settings.max_age,
        )
        self.core = Core(
            subsystem,
            keys,
            transport,
            store,
            log,
            registry,
            settings,
            inspector,
            access_log,
            metrics,
        )
        self.outbox = Outbox(self.core)
        self.pending = PendingRequests(store, keys)
        self.handling = Handling(
            self.core, self.outbox, dict(handlers or {}), _HandlerContext(self)
        )
        self.receiver = Receiver(self.core, self.outbox, self.pending, self.handling)
        self.dead_letters = DeadLetterDesk(
            store,
            lambda keep: transport.take_dead_letters(subsystem.slug, keep),
            reopened=self.handling.take_over,
        )
        self._threads: list[threading.Thread] = []
        self._finisher: threading.Thread | None = None
        self._periodic: list[_Periodic] = []

    # ---- what the composition root and the local API read

    @property
    def me(self) -> SubsystemId:
        return self.core.me

    @property
    def keys(self) -> KeyRing:
        return self.core.keys

    @property
    def transport(self) -> Transport:
        return self.core.transport

    @property
    def store(self) -> ConnectorStore:
        return self.core.store

    @property
    def log(self) -> MessageLog:
        return self.core.log

    @property
    def registry(self) -> SchemaRegistry:
        return self.core.registry

    @property
    def settings(self) -> RuntimeSettings:
        return self.core.settings

    @property
    def metrics(self) -> Metrics:
        return self.core.metrics

    @property
    def access_log(self) -> AccessLog | None:
        return self.core.access_log

    @property
    def handlers(self) -> dict[str, Handler]:
        return self.handling.handlers

    @property
    def directory(self) -> Directory:
        return self.core.directory

    def signer(self) -> Signer:
        """The current signing identity (rotation changes it)."""
        return self.outbox.signer()

    # ---- lifecycle

    def start(self) -> None:
        """Declare the topology, resume unfinished handlers, start consuming."""
        if self._threads:
            return
        self.transport.declare(self.me.slug, self._topics())
        self._finisher = self.handling.start()
        for target, name in ((self.receiver.run, "receive"), (self._watch_directory, "dir")):
            thread = threading.Thread(target=target, name=f"{name}-{self.me.slug}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self.transport.consume(
            self.me.slug, self.receiver.deliveries.put, prefetch=self.settings.prefetch
        )
        logger.info("connector %s started (directory %s)", self.me, self.directory.serial)

    def stop(self) -> None:
        """Graceful: stop consuming, finish in-flight deliveries and handlers, flush the log."""
        if self.core.stopping.is_set():
            return
        self.core.stopping.set()
        for thread in self._threads:  # the receive loop and the directory watcher
            thread.join(timeout=10)
        self.handling.stop()
        if self._finisher is not None:
            self._finisher.join(timeout=10)
        self.core.flush()
        self.outbox.record_confirmed()
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

    # ---- directory

    def _load_directory(self, held: int | None, metrics: Metrics) -> Directory:
        try:
            directory = load_directory(
                self._directory_source(), self.ca_certificate, held_serial=held
            )
        except OSError as exc:
            raise DirectoryError(f"cannot read the directory: {exc}") from exc
        metrics.directory_serial.set(directory.serial)
        return directory

    def _topics(self) -> list[str]:
        return sorted(g.topic for g in self.directory.subscribe_grants if g.subscriber == self.me)

    def refresh_directory(self) -> bool:
        """Load the directory again; switch to it when newer. Returns whether it changed."""
        fresh = self._load_directory(self.directory.serial, self.metrics)
        if fresh.serial == self.directory.serial:
            return False
        topics_before = self._topics()
        self.core.inspector.directory = fresh
        if self._topics() != topics_before:
            self.transport.declare(self.me.slug, self._topics())
        logger.info("connector %s now uses directory %s", self.me, fresh.serial)
        return True

    def _watch_directory(self) -> None:
        """Look for a newer directory; renew the inbox leases and take over a stopped
        replica's entries; now and then forget replay ids past their window (the seen-store
        stays bounded: older messages are refused as stale anyway)."""
        settings = self.settings
        sweep_every = settings.takeover_after.total_seconds() / 2
        pruned = swept = time.monotonic()
        while not self.core.stopping.wait(min(settings.directory_poll, sweep_every)):
            if time.monotonic() - swept >= sweep_every:
                swept = time.monotonic()
                self.handling.take_over()
            try:
                self.refresh_directory()
            except (ExchangeError, TransportError) as exc:
                logger.warning("directory not refreshed: %s", exc)
            self.outbox.record_confirmed()
            for task in self._periodic:
                task.run_if_due()
            if time.monotonic() - pruned > settings.max_age.total_seconds():
                pruned = time.monotonic()
                try:
                    self.store.prune()
                except StoreError as exc:
                    logger.warning("seen-store not pruned: %s", exc)

    def every(self, seconds: float, task: Callable[[], object]) -> None:
        """Run ``task`` every ``seconds`` (from the directory watcher, at its pace); its
        failures are logged, never raised into the watcher."""
        self._periodic.append(_Periodic(seconds, task))

    # ---- the message log

    def log_head(self) -> SignedTreeHead:
        """The signed head of everything the message log holds (signed now if needed)."""
        with self.core.log_lock:
            self.log.flush()
            return self.log.signed_head()

    def log_consistency(self, old_size: int, new_size: int) -> ConsistencyProof:
        """The message log's consistency proof between two of its sizes."""
        with self.core.log_lock:
            return self.log.consistency_proof(old_size, new_size)

    # ---- sending

    def send(
        self, message_type: str, to: str | SubsystemId, payload: Any, *, purpose: str | None = None
    ) -> str:
        """A one-way message, for ``purpose`` (default: the grant's only one); returns its
        id once confirmed by the broker."""
        return self.outbox.send(message_type, to, [payload], purpose)[0].message_id

    def send_many(
        self,
        message_type: str,
        to: str | SubsystemId,
        payloads: Iterable[Any],
        *,
        purpose: str | None = None,
    ) -> int:
        """Many one-way messages: one log flush and one confirmed publish for all."""
        return len(self.outbox.send(message_type, to, payloads, purpose))

    def publish(self, message_type: str, payload: Any) -> str:
        """An event to every granted subscriber. A RESTRICTED or SECRET event goes as one
        encrypted copy per subscriber. Returns the id (of the first copy)."""
        return self.outbox.publish(message_type, payload)

    def publish_many(self, message_type: str, payloads: Iterable[Any]) -> int:
        """Many broadcast events: one log flush and one confirmed publish for all. Only for
        types that travel in clear (RESTRICTED events go one copy per subscriber)."""
        return self.outbox.publish_many(message_type, payloads)

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
        outbox = self.outbox
        outbox.require_fresh_directory()
        target = outbox.target(to)
        stated = outbox.purpose(message_type, target, purpose)
        sealed = outbox.build(message_type, "request", target, payload, purpose=stated)
        pending = self.pending.open(sealed.message_id, sealed.envelope.digest, target)
        wait = timeout or self.settings.request_timeout
        deadline = time.monotonic() + wait
        try:
            outbox.emit([sealed])
            return self.pending.wait(pending, deadline)
        except FutureTimeout as exc:
            raise RequestTimeout(
                f"no response from {target} to {message_type} within {wait:g} s"
            ) from exc
        finally:
            self.pending.close(pending)

    def context(self) -> Context:
        """What a handler gets: this connector's request, send and publish (also for
        application code that acts on the bus outside a handler)."""
        return _HandlerContext(self)

    def status(self, message_id: str) -> MessageStatus | None:
        """What became of a message this subsystem sent (see :class:`MessageStatus`)."""
        self.outbox.record_confirmed()
        with self.core.log_lock:
            return message_status(self.store, self.log, message_id)

    # ---- pull inbox

    def held(self, limit: int = 100) -> list[Delivery]:
        """Messages a handler held for the information system to pull, oldest first."""
        return self.handling.held(limit)

    def release(self, message_ids: Sequence[str]) -> int:
        """The information system has the pulled messages: they are done."""
        return self.store.release(message_ids)

    # ---- health

    def health(self) -> dict[str, object]:
        """Broker, database and directory state, for /health."""
        directory = self.directory
        return {
            "subsystem": str(self.me),
            "database": self.store.ping(),
            "directory": {
                "serial": directory.serial,
                "expires": directory.expires.isoformat(),
                "fresh": not directory.is_stale(),
            },
            "log_records": self.log.size,
            "inbox": self.store.counts(),
        }


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
        """An event to every granted subscriber (see :meth:`Connector.publish`)."""
        return self._connector.publish(message_type, payload)
