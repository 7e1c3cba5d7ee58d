"""RabbitMQ behind the :class:`~connectors._transport.Transport` protocol; the only module of
the project that imports pika.

One thread per transport runs a pika ``SelectConnection`` (the asynchronous API) on an
``IOLoop`` that lives as long as the transport, across reconnects. Every pika object is
touched on that thread only: the other threads hand it work through
``IOLoop.add_callback_threadsafe`` (once per call, not once per message) and wait on an
event or a future. Methods named ``_io_*`` run on the IO thread.

On the IO thread, per connection::

    admin channel     declarations, one operation at a time (a refused declaration closes
                      this channel only; it is reopened for the next operation)
    publish channel   confirm mode; messages pipelined up to ``confirm_window`` unconfirmed
    consumer channels one per :meth:`PikaTransport.consume`, with its own prefetch

When the connection drops, unconfirmed messages go back to the front of the backlog, and the
next connection (exponential backoff, cycling through ``urls``) replays the declarations,
restarts the consumers and publishes the backlog again. Delivery tags handed out carry the
number of the consumer channel they came from (``generation << 40 | amqp tag``), so settling
a tag of a channel that is gone is a no-op: the broker delivers that message again.

Limitation: the management HTTP API is not assumed, so :meth:`PikaTransport.declare` can
only remove the ``event.*`` bindings that this transport object made earlier; bindings left
by an earlier process stay until removed by hand (``rabbitmqctl`` or the management UI).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

# pika ships no type information (no py.typed, and no maintained stubs); every pika object
# is therefore Any here, and is confined to this module.
import pika  # type: ignore[import-untyped]
from pika.adapters.select_connection import IOLoop  # type: ignore[import-untyped]

from connectors._errors import ConfigError, NotConfirmed, TransportError
from connectors._transport import (
    ATTEMPT_HEADER,
    BUS_EXCHANGE,
    CONTENT_TYPE,
    DEAD_LETTER_EXCHANGE,
    Deliver,
    InboundMessage,
    Keep,
    OutboundMessage,
    dead_letter_queue,
    direct_key,
    event_key,
    queue_name,
    retry_queue,
)

_LOG = logging.getLogger("connectors.pika")

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
CONNECT_TIMEOUT = 15.0  # seconds the constructor waits for the first connection
OPERATION_TIMEOUT = 30.0  # seconds declare() and consume() wait for the broker
CLOSE_CONFIRM_WAIT = 10.0  # seconds close() waits for outstanding confirms
_FIRST_RETRY = 0.1  # seconds before the first reconnect attempt; doubled per failure
_TAG_BITS = 40  # AMQP delivery tags of one channel stay far below 2**40
_TAG_MASK = (1 << _TAG_BITS) - 1
_QUORUM = {"x-queue-type": "quorum"}
# Headers the broker writes when it dead-letters; a parked copy must not carry stale ones.
_BROKER_HEADERS = ("x-death", "x-first-death-", "x-last-death-", "x-delivery-count")

_Step = Callable[[Any, Callable[[Any], None]], None]


@dataclass(eq=False, slots=True)
class _Batch:
    """One publish() call: the caller waits on ``done``; the IO thread counts confirms."""

    remaining: int
    done: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)
    cancelled: bool = False  # the caller gave up: what is not yet sent is dropped


@dataclass(eq=False, slots=True)
class _Pending:
    message: OutboundMessage
    batch: _Batch
    expiration: str | None = None
    returned: bool = False  # the broker returned it as unroutable (mandatory)


@dataclass(eq=False, slots=True)
class _AdminOp:
    label: str
    build: Callable[[], list[_Step]]  # built when the operation starts, not when queued
    future: Future[None] | None  # None for replays after a reconnect
    steps: list[_Step] = field(default_factory=list)
    index: int = 0


@dataclass(eq=False, slots=True)
class _Consumer:
    slug: str
    deliver: Deliver
    prefetch: int
    started: Future[None] = field(default_factory=Future)
    channel: Any = None
    opening: bool = False  # a channel is being opened for it
    generation: int = 0
    consumer_tag: str | None = None
    retry_timer: Any = None


def _safe_url(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def _plain(value: object) -> object:
    """An AMQP field value as plain Python: str, int, float, bool, None, list, dict (bytes
    that are not UTF-8 stay bytes; timestamps become ISO 8601 text, decimals text)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        with contextlib.suppress(UnicodeDecodeError):
            return value.decode()
        return value
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _plain_headers(headers: dict[str, Any] | None) -> dict[str, object]:
    if not headers:
        return {}
    return {k: v if type(v) is str else _plain(v) for k, v in headers.items()}


def _is_broker_header(name: str) -> bool:
    return name.startswith(_BROKER_HEADERS)


def _describe(reason: object) -> str:
    """A pika close reason (an exception with reply code and text) as one line."""
    code = getattr(reason, "reply_code", None)
    text = getattr(reason, "reply_text", None)
    if code is not None:
        return f"{code} {text}"
    return repr(reason)


class PikaTransport:
    """A :class:`~connectors.Transport` on RabbitMQ (docs/protocol.md §11).

    The constructor connects (to the first of ``urls`` that answers) and returns once the
    connection is open, or raises :class:`~connectors.TransportError` after
    ``CONNECT_TIMEOUT`` seconds. ``name`` is the connection name the broker shows.
    ``reconnect_max_delay`` caps the exponential backoff between attempts;
    ``confirm_window`` bounds the published-but-unconfirmed messages.
    """

    def __init__(
        self,
        urls: Sequence[str] = (DEFAULT_URL,),
        *,
        name: str = "tabadul",
        reconnect_max_delay: float = 10.0,
        confirm_window: int = 1000,
    ) -> None:
        if isinstance(urls, str):
            urls = (urls,)
        if not urls:
            raise ConfigError("PikaTransport needs at least one AMQP URL")
        if confirm_window < 1:
            raise ConfigError("confirm_window must be at least 1")
        self._parameters = []
        for url in urls:
            parameters = pika_parameters(url)
            parameters.client_properties = {"connection_name": name}
            self._parameters.append((parameters, _safe_url(url)))
        self._name = name
        self._max_delay = reconnect_max_delay
        self._window = confirm_window

        # Shared between threads (set once, or guarded by _lock).
        self._lock = threading.Lock()
        self._closing = False
        self._opened = threading.Event()
        self._ioloop: Any = IOLoop()
        self._io_ident: int | None = None
        self._thread = threading.Thread(target=self._io_run, name=f"pika-{name}", daemon=True)

        # IO-thread state.
        self._stopping = False
        self._connection: Any = None
        self._url_index = 0
        self._failures = 0
        self._last_error: object = None
        self._reconnect_timer: Any = None
        self._admin_channel: Any = None
        self._admin_ops: deque[_AdminOp] = deque()
        self._admin_busy = False
        self._declared: dict[str, tuple[str, ...]] = {}
        self._bound: dict[str, set[str]] = {}
        self._pub_channel: Any = None
        self._pub_ready = False
        self._backlog: deque[_Pending] = deque()
        self._unconfirmed: dict[int, _Pending] = {}
        self._seq = 0  # last publish sequence number on the publish channel
        self._low = 1  # no unconfirmed sequence number is below this
        self._consumers: list[_Consumer] = []
        self._live: dict[int, Any] = {}  # generation -> open consumer channel
        self._generations = itertools.count(1)

        self._thread.start()
        self._post(self._io_connect)
        if not self._opened.wait(CONNECT_TIMEOUT):
            targets = ", ".join(safe for _, safe in self._parameters)
            last = self._last_error
            self.close()
            raise TransportError(
                f"cannot connect to RabbitMQ at {targets} within {CONNECT_TIMEOUT:g} s"
                f" (last error: {last!r})"
            )

    # -- public API (any thread) -------------------------------------------------------------

    def declare(self, slug: str, topics: Sequence[str]) -> None:
        """Declare the bus, the dead-letter exchange and the subsystem's three queues, bind
        ``to.<slug>`` and ``event.<topic>`` per topic, and unbind the ``event.*`` keys this
        transport bound before that are no longer listed. Raises
        :class:`~connectors.TransportError` when the broker refuses (e.g. a queue of the same
        name exists with other arguments) or does not answer in time."""
        wanted = tuple(dict.fromkeys(topics))
        future: Future[None] = Future()
        op = _AdminOp(
            label=f"declare {queue_name(slug)}",
            build=lambda: self._io_declare_steps(slug, wanted),
            future=future,
        )
        self._call_blocking(lambda: self._io_add_admin_op(op), future, op.label)

    def remove(self, slug: str) -> None:
        """Delete the subsystem's queue, dead-letter queue and retry queue with whatever they
        hold (a subsystem leaving the bus, or a demonstration starting afresh)."""
        self._declared.pop(slug, None)
        self._bound.pop(slug, None)
        future: Future[None] = Future()
        names = (queue_name(slug), dead_letter_queue(slug), retry_queue(slug))
        op = _AdminOp(
            label=f"remove {queue_name(slug)}",
            build=lambda: [self._delete_step(name) for name in names],
            future=future,
        )
        self._call_blocking(lambda: self._io_add_admin_op(op), future, op.label)

    def publish(self, messages: Sequence[OutboundMessage], *, timeout: float = 30.0) -> None:
        """Publish persistently with confirms (pipelined) and return once every message is
        confirmed. Raises :class:`~connectors.NotConfirmed` after ``timeout`` seconds (what
        was not sent yet is dropped), or :class:`~connectors.TransportError` when the broker
        nacked a message, returned a direct (``to.*``) or dead-letter message as unroutable,
        or the transport closed."""
        if not messages:
            return
        self._refuse_on_io_thread("publish")
        batch = _Batch(remaining=len(messages))
        self._wait_batch(batch, [_Pending(m, batch) for m in messages], timeout)

    def consume(self, slug: str, deliver: Deliver, *, prefetch: int = 256) -> None:
        """Consume ``tabadul.q.<slug>`` with ``prefetch`` unacknowledged deliveries at most;
        ``deliver`` runs on the transport's thread and should return quickly. Returns once
        the broker confirmed the consumer; keeps consuming across reconnects. Raises
        :class:`~connectors.TransportError` if the queue does not exist."""
        consumer = _Consumer(slug=slug, deliver=deliver, prefetch=prefetch)
        try:
            self._call_blocking(
                lambda: self._io_add_consumer(consumer), consumer.started, f"consume {slug}"
            )
        except TransportError:
            with contextlib.suppress(TransportError):
                self._post(lambda: self._io_remove_consumer(consumer))
            raise

    def ack(self, delivery_tags: Sequence[int]) -> None:
        """Acknowledge deliveries. Tags of a channel that has gone (a reconnect, or a closed
        transport) are ignored: the broker delivers those messages again."""
        self._settle(delivery_tags, requeue=False)

    def requeue(self, delivery_tags: Sequence[int]) -> None:
        """Give deliveries back to the queue (basic.nack with requeue); tags of a channel
        that has gone are ignored, as for :meth:`ack`."""
        self._settle(delivery_tags, requeue=True)

    def _settle(self, delivery_tags: Sequence[int], *, requeue: bool) -> None:
        if not delivery_tags or self._closing:
            return  # after close() the connection is gone and so are its deliveries
        tags = list(delivery_tags)
        with contextlib.suppress(TransportError):  # closed meanwhile: the same as above
            self._post(lambda: self._io_settle(tags, requeue=requeue))

    def retry_later(self, slug: str, message: InboundMessage, delay: float) -> None:
        """Park a copy of ``message`` in ``tabadul.retry.<slug>`` for ``delay`` seconds
        (per-message expiration; the queue then dead-letters it to ``to.<slug>``) with
        ``x-tabadul-attempt`` incremented; once the copy is confirmed, acknowledge the
        original. Raises like :meth:`publish` (the original then stays unacknowledged)."""
        self._refuse_on_io_thread("retry_later")
        attempt = int(str(message.headers.get(ATTEMPT_HEADER, 0))) + 1
        headers = {
            k: str(v) if not isinstance(v, str) else v
            for k, v in message.headers.items()
            if not _is_broker_header(k)
        }
        headers[ATTEMPT_HEADER] = str(attempt)
        parked = OutboundMessage(
            routing_key=retry_queue(slug),
            body=message.body,
            message_id=message.message_id or "",
            correlation_id=message.correlation_id,
            headers=headers,
            exchange="",
        )
        batch = _Batch(remaining=1)
        expiration = str(max(0, int(delay * 1000)))
        self._wait_batch(batch, [_Pending(parked, batch, expiration=expiration)], 30.0)
        self.ack([message.delivery_tag])

    def take_dead_letters(self, slug: str, keep: Keep, *, limit: int = 500) -> int:
        """See :class:`~connectors.Transport`: over a connection of its own (a rare,
        operator-driven call that must not hold up the IO loop)."""
        return take_dead_letters([p for p, _ in self._parameters], slug, keep, limit=limit)

    def ping(self) -> bool:
        """Whether the connection to the broker is open right now (for health checks)."""
        return self._io_connection_open()

    def close(self) -> None:
        """Stop consuming, wait up to ``CLOSE_CONFIRM_WAIT`` seconds for outstanding confirms
        (publishers still waiting then get :class:`~connectors.TransportError`), close the
        connection (unacknowledged deliveries return to their queues) and join the
        transport's thread. Idempotent."""
        with self._lock:
            first = not self._closing
            self._closing = True
        if first:
            try:
                self._post(self._io_begin_shutdown, force=True)
            except TransportError:
                return  # the loop has already ended
        if threading.get_ident() != self._io_ident:
            self._thread.join(CLOSE_CONFIRM_WAIT + 10.0)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- crossing to the IO thread -----------------------------------------------------------

    def _post(self, callback: Callable[[], None], *, force: bool = False) -> None:
        """Run ``callback`` on the IO thread (at once when already there)."""
        if self._closing and not force:
            raise TransportError("the transport is closed")
        if threading.get_ident() == self._io_ident:
            self._guarded(callback)
            return
        try:
            self._ioloop.add_callback_threadsafe(callback)
        except Exception as exc:  # the loop is gone: closed or failed
            raise TransportError("the transport's IO loop is not running") from exc

    def _refuse_on_io_thread(self, what: str) -> None:
        if threading.get_ident() == self._io_ident:
            raise TransportError(f"{what}() blocks and cannot run on the transport's thread")

    def _call_blocking(self, start: Callable[[], None], future: Future[None], label: str) -> None:
        self._refuse_on_io_thread(label.split(maxsplit=1)[0])
        self._post(start)
        try:
            future.result(OPERATION_TIMEOUT)
        except FutureTimeout as exc:
            raise TransportError(
                f"{label}: no answer from the broker within {OPERATION_TIMEOUT:g} s"
            ) from exc

    def _wait_batch(self, batch: _Batch, pending: list[_Pending], timeout: float) -> None:
        self._post(lambda: self._io_enqueue(pending))
        if not batch.done.wait(timeout):
            batch.cancelled = True
            raise NotConfirmed(
                f"the broker did not confirm {batch.remaining} of {len(pending)} message(s)"
                f" within {timeout:g} s"
            )
        if batch.errors:
            more = f" (and {len(batch.errors) - 3} more)" if len(batch.errors) > 3 else ""
            raise TransportError("; ".join(batch.errors[:3]) + more)

    def _guarded(self, callback: Callable[[], None]) -> None:
        # An exception escaping into pika's loop would end the IO thread; log it instead.
        try:
            callback()
        except Exception:  # noqa: BLE001 - logged with its traceback; the loop must live
            _LOG.exception("unexpected error on the transport thread")

    def _guard(self, callback: Callable[..., None]) -> Callable[..., None]:
        def guarded(*args: Any) -> None:
            try:
                callback(*args)
            except Exception:  # noqa: BLE001 - logged with its traceback; the loop must live
                _LOG.exception("unexpected error on the transport thread")

        return guarded

    # -- IO thread: the loop and the connection ----------------------------------------------

    def _io_run(self) -> None:
        self._io_ident = threading.get_ident()
        try:
            self._ioloop.start()
        except Exception:  # noqa: BLE001 - logged; waiting callers are failed just below
            _LOG.exception("the transport's IO loop failed; the transport is unusable")
            self._closing = True
        self._stopping = True
        self._io_fail_everything("the transport closed")
        self._ioloop.close()

    def _io_connect(self) -> None:
        self._reconnect_timer = None
        if self._stopping:
            return
        parameters, safe = self._parameters[self._url_index % len(self._parameters)]
        _LOG.debug("connecting to %s", safe)
        try:
            self._connection = pika.SelectConnection(
                parameters,
                on_open_callback=self._guard(self._io_on_open),
                on_open_error_callback=self._guard(self._io_on_open_error),
                on_close_callback=self._guard(self._io_on_closed),
                custom_ioloop=self._ioloop,
            )
        except Exception as exc:  # noqa: BLE001 - whatever the cause, back off and retry
            self._last_error = exc
            _LOG.warning("cannot connect to %s: %r", safe, exc)
            self._io_schedule_reconnect()

    def _io_schedule_reconnect(self) -> None:
        delay = min(self._max_delay, _FIRST_RETRY * 2**self._failures)
        self._failures += 1
        self._url_index += 1
        _, safe = self._parameters[self._url_index % len(self._parameters)]
        _LOG.warning("reconnecting to %s in %.1f s", safe, delay)
        self._reconnect_timer = self._ioloop.call_later(delay, self._guard(self._io_connect))

    def _io_on_open(self, connection: Any) -> None:
        if connection is not self._connection:
            return
        _, safe = self._parameters[self._url_index % len(self._parameters)]
        _LOG.info("connected to %s as %r", safe, self._name)
        self._failures = 0
        # Replay what was declared, then restart the consumers, before anything queued since.
        replay = [self._declare_op(slug, topics) for slug, topics in self._declared.items()]
        replay.append(_AdminOp("restart consumers", self._io_consumer_steps, None))
        self._admin_ops.extendleft(reversed(replay))
        connection.channel(on_open_callback=self._guard(self._io_on_admin_open))
        connection.channel(on_open_callback=self._guard(self._io_on_publish_open))

    def _io_on_open_error(self, connection: Any, error: object) -> None:
        if connection is not self._connection:
            return
        self._connection = None
        self._last_error = error
        if self._stopping:
            self._ioloop.stop()
            return
        _, safe = self._parameters[self._url_index % len(self._parameters)]
        _LOG.warning("cannot connect to %s: %r", safe, error)
        self._io_schedule_reconnect()

    def _io_on_closed(self, connection: Any, reason: object) -> None:
        if connection is not self._connection:
            return
        self._connection = None
        self._last_error = reason
        self._admin_channel = None
        self._admin_busy = False
        self._pub_channel = None
        self._pub_ready = False
        self._live.clear()
        for consumer in self._consumers:
            consumer.channel = None
            consumer.opening = False
            if consumer.retry_timer is not None:
                self._ioloop.remove_timeout(consumer.retry_timer)
                consumer.retry_timer = None
        # Unconfirmed messages may or may not have reached a queue: publish them again.
        if self._unconfirmed:
            again = [self._unconfirmed[s] for s in sorted(self._unconfirmed)]
            for pending in again:
                pending.returned = False
            self._backlog.extendleft(reversed(again))
            self._unconfirmed.clear()
        if self._stopping:
            self._ioloop.stop()
            return
        _LOG.warning(
            "connection lost (%s); %d message(s) to publish again",
            _describe(reason),
            len(self._backlog),
        )
        self._io_schedule_reconnect()

    def _io_connection_open(self) -> bool:
        return self._connection is not None and self._connection.is_open and not self._stopping

    # -- IO thread: declarations ------------------------------------------------------------

    def _declare_op(self, slug: str, topics: tuple[str, ...]) -> _AdminOp:
        return _AdminOp(
            label=f"declare {queue_name(slug)} (replay)",
            build=lambda: self._io_declare_steps(slug, topics),
            future=None,
        )

    def _io_declare_steps(self, slug: str, topics: tuple[str, ...]) -> list[_Step]:
        own, dlq, retry = queue_name(slug), dead_letter_queue(slug), retry_queue(slug)
        keys = {event_key(topic) for topic in topics}
        stale = sorted(self._bound.get(slug, set()) - keys)

        def record(_channel: Any, done: Callable[[Any], None]) -> None:
            self._declared[slug] = topics
            self._bound[slug] = keys
            done(None)

        steps: list[_Step] = [
            lambda ch, done: ch.exchange_declare(
                BUS_EXCHANGE, exchange_type="topic", durable=True, callback=done
            ),
            lambda ch, done: ch.exchange_declare(
                DEAD_LETTER_EXCHANGE, exchange_type="direct", durable=True, callback=done
            ),
            lambda ch, done: ch.queue_declare(dlq, durable=True, arguments=_QUORUM, callback=done),
            lambda ch, done: ch.queue_bind(dlq, DEAD_LETTER_EXCHANGE, slug, callback=done),
            lambda ch, done: ch.queue_declare(
                own,
                durable=True,
                arguments={
                    **_QUORUM,
                    "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
                    "x-dead-letter-routing-key": slug,
                },
                callback=done,
            ),
            lambda ch, done: ch.queue_declare(
                retry,
                durable=True,
                arguments={
                    **_QUORUM,
                    "x-dead-letter-exchange": BUS_EXCHANGE,
                    "x-dead-letter-routing-key": direct_key(slug),
                },
                callback=done,
            ),
            lambda ch, done: ch.queue_bind(own, BUS_EXCHANGE, direct_key(slug), callback=done),
        ]
        steps.extend(self._bind_step(own, key) for key in sorted(keys))
        steps.extend(self._unbind_step(own, key) for key in stale)
        steps.append(record)
        return steps

    @staticmethod
    def _delete_step(queue: str) -> _Step:
        return lambda ch, done: ch.queue_delete(queue, callback=done)

    @staticmethod
    def _bind_step(queue: str, key: str) -> _Step:
        return lambda ch, done: ch.queue_bind(queue, BUS_EXCHANGE, key, callback=done)

    @staticmethod
    def _unbind_step(queue: str, key: str) -> _Step:
        return lambda ch, done: ch.queue_unbind(queue, BUS_EXCHANGE, key, callback=done)

    def _io_add_admin_op(self, op: _AdminOp) -> None:
        self._admin_ops.append(op)
        self._io_admin_next()

    def _io_on_admin_open(self, channel: Any) -> None:
        if not self._io_connection_open() or channel.connection is not self._connection:
            return
        self._admin_channel = channel
        channel.add_on_close_callback(self._guard(self._io_on_admin_closed))
        self._io_admin_next()

    def _io_on_admin_closed(self, channel: Any, reason: object) -> None:
        if channel is not self._admin_channel:
            return
        self._admin_channel = None
        self._admin_busy = False
        if not self._io_connection_open():
            return  # the connection went: the operation is retried after reconnecting
        # The broker refused the current operation (a channel error): report it, go on.
        if self._admin_ops:
            op = self._admin_ops.popleft()
            message = f"{op.label} refused by the broker: {_describe(reason)}"
            if op.future is not None:
                op.future.set_exception(TransportError(message))
            else:
                _LOG.error("%s", message)
        self._connection.channel(on_open_callback=self._guard(self._io_on_admin_open))

    def _io_admin_next(self) -> None:
        channel = self._admin_channel
        if self._admin_busy or channel is None or not self._admin_ops:
            return
        op = self._admin_ops[0]
        op.steps = op.build()
        op.index = 0
        self._admin_busy = True
        self._io_admin_step(channel, op)

    def _io_admin_step(self, channel: Any, op: _AdminOp) -> None:
        if (
            channel is not self._admin_channel
            or not self._admin_ops
            or self._admin_ops[0] is not op
        ):
            return  # a reply for a channel or an operation that is gone
        if op.index == len(op.steps):
            self._admin_ops.popleft()
            self._admin_busy = False
            if op.future is not None and not op.future.done():
                op.future.set_result(None)
            self._io_admin_next()
            return
        step = op.steps[op.index]
        op.index += 1
        step(channel, self._guard(lambda _frame: self._io_admin_step(channel, op)))

    # -- IO thread: publishing ---------------------------------------------------------------

    def _io_on_publish_open(self, channel: Any) -> None:
        if not self._io_connection_open() or channel.connection is not self._connection:
            return
        self._pub_channel = channel
        channel.add_on_close_callback(self._guard(self._io_on_publish_closed))
        channel.add_on_return_callback(self._guard(self._io_on_return))
        channel.confirm_delivery(
            ack_nack_callback=self._guard(lambda frame: self._io_on_confirm(channel, frame)),
            callback=self._guard(lambda _frame: self._io_on_confirm_mode(channel)),
        )

    def _io_on_confirm_mode(self, channel: Any) -> None:
        if channel is not self._pub_channel:
            return
        self._pub_ready = True
        self._seq = 0
        self._low = 1
        self._opened.set()
        self._io_pump()

    def _io_on_publish_closed(self, channel: Any, reason: object) -> None:
        if channel is not self._pub_channel:
            return
        self._pub_channel = None
        self._pub_ready = False
        if not self._io_connection_open():
            return  # the connection went: _io_on_closed publishes these again
        # A channel error (e.g. an exchange that does not exist): the unconfirmed messages
        # are in an unknown state; report them to their callers rather than loop on them.
        message = f"the broker closed the publish channel: {_describe(reason)}"
        _LOG.error("%s", message)
        for pending in self._unconfirmed.values():
            self._io_resolve(pending, message)
        self._unconfirmed.clear()
        self._connection.channel(on_open_callback=self._guard(self._io_on_publish_open))

    def _io_enqueue(self, pending: list[_Pending]) -> None:
        if self._stopping:
            for item in pending:
                self._io_resolve(item, "the transport is closing")
            return
        self._backlog.extend(pending)
        self._io_pump()

    def _io_pump(self) -> None:
        channel = self._pub_channel
        if channel is None or not self._pub_ready:
            return
        backlog, unconfirmed, window = self._backlog, self._unconfirmed, self._window
        properties_class, publish = pika.BasicProperties, channel.basic_publish
        while backlog and len(unconfirmed) < window:
            pending = backlog.popleft()
            if pending.batch.cancelled:
                continue
            message = pending.message
            properties = properties_class(
                content_type=CONTENT_TYPE,
                delivery_mode=2,
                message_id=message.message_id,
                correlation_id=message.correlation_id,
                headers=dict(message.headers) if message.headers else None,
                expiration=pending.expiration,
            )
            # A broadcast nobody subscribes to is fine; a direct or dead-letter message
            # that reaches no queue is an error, so ask the broker to return it.
            mandatory = not (
                message.exchange == BUS_EXCHANGE and message.routing_key.startswith("event.")
            )
            try:
                publish(message.exchange, message.routing_key, message.body, properties, mandatory)
            except pika.exceptions.AMQPError:
                _LOG.debug("publish channel unusable; keeping the backlog", exc_info=True)
                backlog.appendleft(pending)
                return
            self._seq += 1
            unconfirmed[self._seq] = pending

    def _io_on_return(self, _channel: Any, method: Any, properties: Any, _body: bytes) -> None:
        # basic.return precedes the message's basic.ack: mark the earliest match.
        for seq in range(self._low, self._seq + 1):
            pending = self._unconfirmed.get(seq)
            if (
                pending is not None
                and not pending.returned
                and pending.message.message_id == properties.message_id
                and pending.message.routing_key == method.routing_key
                and pending.message.exchange == method.exchange
            ):
                pending.returned = True
                return

    def _io_on_confirm(self, channel: Any, frame: Any) -> None:
        if channel is not self._pub_channel:
            return
        method = frame.method
        tag = method.delivery_tag
        error = None
        if isinstance(method, pika.spec.Basic.Nack):
            error = "the broker refused (nack) the message"
        seqs: Iterable[int]
        if method.multiple:
            seqs = range(self._low, tag + 1)
            self._low = max(self._low, tag + 1)
        else:
            seqs = (tag,)
        pop = self._unconfirmed.pop
        for seq in seqs:
            pending = pop(seq, None)
            if pending is not None:
                self._io_resolve(pending, error)
        self._io_pump()

    @staticmethod
    def _io_resolve(pending: _Pending, error: str | None) -> None:
        batch = pending.batch
        message = pending.message
        if error is not None:
            batch.errors.append(f"{error} (message {message.message_id})")
        elif pending.returned:
            where = message.exchange or "the default exchange"
            batch.errors.append(
                f"unroutable: no queue bound to {message.routing_key!r} on {where}"
                f" (message {message.message_id})"
            )
        batch.remaining -= 1
        if batch.remaining == 0:
            batch.done.set()

    # -- IO thread: consuming ----------------------------------------------------------------

    def _io_add_consumer(self, consumer: _Consumer) -> None:
        if self._stopping:
            consumer.started.set_exception(TransportError("the transport is closing"))
            return
        self._consumers.append(consumer)
        self._io_start_consumer(consumer)

    def _io_remove_consumer(self, consumer: _Consumer) -> None:
        if consumer in self._consumers:
            self._consumers.remove(consumer)
        if consumer.retry_timer is not None:
            self._ioloop.remove_timeout(consumer.retry_timer)
            consumer.retry_timer = None
        channel = consumer.channel
        if channel is not None and channel.is_open:
            channel.close()

    def _io_consumer_steps(self) -> list[_Step]:
        def start_all(_channel: Any, done: Callable[[Any], None]) -> None:
            for consumer in self._consumers:
                self._io_start_consumer(consumer)
            done(None)

        return [start_all]

    def _io_start_consumer(self, consumer: _Consumer) -> None:
        consumer.retry_timer = None
        if not self._io_connection_open() or consumer.channel is not None or consumer.opening:
            return
        if consumer not in self._consumers:
            return
        connection = self._connection
        consumer.opening = True

        def on_open(channel: Any) -> None:
            consumer.opening = False
            if connection is not self._connection or self._stopping:
                return
            if consumer not in self._consumers:  # removed while its channel was opening
                channel.close()
                return
            generation = next(self._generations)
            consumer.channel = channel
            consumer.generation = generation
            self._live[generation] = channel
            channel.add_on_close_callback(
                self._guard(lambda ch, reason: self._io_on_consumer_closed(consumer, ch, reason))
            )
            channel.add_on_cancel_callback(
                self._guard(lambda _frame: self._io_on_cancelled(consumer, channel))
            )
            channel.basic_qos(
                prefetch_count=consumer.prefetch,
                callback=self._guard(lambda _f: self._io_basic_consume(consumer, channel)),
            )

        connection.channel(on_open_callback=self._guard(on_open))

    def _io_basic_consume(self, consumer: _Consumer, channel: Any) -> None:
        if consumer.channel is not channel:
            return
        on_message = self._message_handler(consumer.generation << _TAG_BITS, consumer)

        def consuming(_frame: Any) -> None:
            if not consumer.started.done():
                consumer.started.set_result(None)
            _LOG.debug("consuming %s", queue_name(consumer.slug))

        consumer.consumer_tag = channel.basic_consume(
            queue_name(consumer.slug), on_message, callback=self._guard(consuming)
        )

    def _message_handler(self, base: int, consumer: _Consumer) -> Callable[..., None]:
        deliver = consumer.deliver

        def on_message(_channel: Any, method: Any, properties: Any, body: bytes) -> None:
            try:
                deliver(
                    InboundMessage(
                        body=body,
                        delivery_tag=base | method.delivery_tag,
                        routing_key=method.routing_key,
                        redelivered=bool(method.redelivered),
                        message_id=properties.message_id,
                        correlation_id=properties.correlation_id,
                        headers=_plain_headers(properties.headers),
                    )
                )
            except Exception:  # noqa: BLE001 - the connector's bug must not end the IO thread
                # Left unacknowledged: the broker delivers it again after a reconnect.
                _LOG.exception("deliver() failed for a message from %s", queue_name(consumer.slug))

        return on_message

    def _io_on_cancelled(self, consumer: _Consumer, channel: Any) -> None:
        if consumer.channel is channel and channel.is_open:
            _LOG.warning("the broker cancelled the consumer of %s", queue_name(consumer.slug))
            channel.close()  # reopened (with backoff) by _io_on_consumer_closed

    def _io_on_consumer_closed(self, consumer: _Consumer, channel: Any, reason: object) -> None:
        if consumer.channel is not channel:
            return
        consumer.channel = None
        self._live.pop(consumer.generation, None)
        if not self._io_connection_open() or consumer not in self._consumers:
            return
        if not consumer.started.done():
            self._consumers.remove(consumer)
            consumer.started.set_exception(
                TransportError(
                    f"cannot consume from {queue_name(consumer.slug)}: {_describe(reason)}"
                )
            )
            return
        delay = self._max_delay
        _LOG.warning(
            "consumer channel of %s closed (%s); retrying in %.1f s",
            queue_name(consumer.slug),
            _describe(reason),
            delay,
        )
        consumer.retry_timer = self._ioloop.call_later(
            delay, self._guard(lambda: self._io_start_consumer(consumer))
        )

    def _io_settle(self, tags: list[int], *, requeue: bool) -> None:
        live = self._live
        for tag in tags:
            channel = live.get(tag >> _TAG_BITS)
            if channel is None or not channel.is_open:
                continue  # a channel from before a reconnect: the message comes again
            if requeue:
                channel.basic_nack(tag & _TAG_MASK, requeue=True)
            else:
                channel.basic_ack(tag & _TAG_MASK)

    # -- IO thread: shutting down ------------------------------------------------------------

    def _io_begin_shutdown(self) -> None:
        self._stopping = True
        for consumer in self._consumers:
            channel = consumer.channel
            if consumer.consumer_tag and channel is not None and channel.is_open:
                try:
                    channel.basic_cancel(consumer.consumer_tag)
                except Exception:  # noqa: BLE001 - the connection closes next anyway
                    _LOG.debug("basic_cancel failed", exc_info=True)
        self._io_close_when_confirmed(deadline=time.monotonic() + CLOSE_CONFIRM_WAIT)

    def _io_close_when_confirmed(self, deadline: float) -> None:
        connected = self._connection is not None and self._connection.is_open and self._pub_ready
        waiting = self._unconfirmed or any(not p.batch.cancelled for p in self._backlog)
        if connected and waiting and time.monotonic() < deadline:
            self._ioloop.call_later(
                0.02, self._guard(lambda: self._io_close_when_confirmed(deadline))
            )
            return
        self._io_fail_everything("the transport closed before the broker confirmed")
        if self._reconnect_timer is not None:
            self._ioloop.remove_timeout(self._reconnect_timer)
            self._reconnect_timer = None
        connection = self._connection
        if connection is not None and not connection.is_closing and not connection.is_closed:
            try:
                connection.close()
            except Exception:  # noqa: BLE001 - stop the loop whatever state pika is in
                _LOG.debug("closing the connection failed", exc_info=True)
                self._ioloop.stop()
            return  # _io_on_closed / _io_on_open_error stop the loop
        self._ioloop.stop()

    def _io_fail_everything(self, message: str) -> None:
        for pending in list(self._unconfirmed.values()) + list(self._backlog):
            self._io_resolve(pending, message)
        self._unconfirmed.clear()
        self._backlog.clear()
        for op in self._admin_ops:
            if op.future is not None and not op.future.done():
                op.future.set_exception(TransportError(message))
        self._admin_ops.clear()
        for consumer in self._consumers:
            if not consumer.started.done():
                consumer.started.set_exception(TransportError(message))


def pika_parameters(url: str) -> pika.URLParameters:
    """The connection parameters of an AMQP URL; raises :class:`~connectors.ConfigError`."""
    try:
        return pika.URLParameters(url)
    except Exception as exc:
        raise ConfigError(f"invalid AMQP URL {_safe_url(url)!r}: {exc}") from exc


def take_dead_letters(
    parameters: Sequence[pika.ConnectionParameters], slug: str, keep: Keep, *, limit: int = 500
) -> int:
    """Take up to ``limit`` messages off ``tabadul.dlq.<slug>`` with ``basic.get``: ``keep``
    stores them, then one multiple acknowledgement removes them; if ``keep`` raises, closing
    the channel gives them back to the queue. Raises :class:`~connectors.TransportError`
    when no broker of ``parameters`` answers or the queue does not exist."""
    try:
        connection = pika.BlockingConnection(list(parameters))
    except pika.exceptions.AMQPError as exc:
        raise TransportError(f"cannot reach the broker: {_describe(exc)}") from exc
    try:
        channel = connection.channel()
        taken: list[InboundMessage] = []
        last_tag = 0
        while len(taken) < limit:
            method, properties, body = channel.basic_get(dead_letter_queue(slug), auto_ack=False)
            if method is None:
                break
            last_tag = method.delivery_tag
            taken.append(
                InboundMessage(
                    body=body,
                    delivery_tag=method.delivery_tag,
                    routing_key=method.routing_key,
                    redelivered=bool(method.redelivered),
                    message_id=properties.message_id,
                    correlation_id=properties.correlation_id,
                    headers=_plain_headers(properties.headers),
                )
            )
        if taken:
            keep(taken)
            channel.basic_ack(last_tag, multiple=True)
        return len(taken)
    except pika.exceptions.AMQPError as exc:
        raise TransportError(f"cannot take the dead letters of {slug}: {_describe(exc)}") from exc
    finally:
        with contextlib.suppress(pika.exceptions.AMQPError):
            connection.close()
