"""An in-process broker with the same routing as the bus, for fast tests of the runtime.

Not a substitute for RabbitMQ: every behaviour is also tested on the real broker.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from connectors._transport import (
    ATTEMPT_HEADER,
    BUS_EXCHANGE,
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


@dataclass
class MemoryBroker:
    """Queues and bindings shared by every :class:`MemoryTransport` made from it."""

    queues: dict[str, queue.Queue[OutboundMessage | None]] = field(default_factory=dict)
    bindings: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def queue(self, name: str) -> queue.Queue[OutboundMessage | None]:
        with self.lock:
            return self.queues.setdefault(name, queue.Queue())

    def route(self, message: OutboundMessage) -> None:
        with self.lock:
            targets = set(self.bindings.get((message.exchange, message.routing_key), ()))
        for name in targets:
            self.queue(name).put(message)

    def transport(self) -> MemoryTransport:
        return MemoryTransport(self)

    def drain(self, name: str) -> list[OutboundMessage]:
        """Take every message waiting in queue ``name`` (for tests of dead letters)."""
        q = self.queue(name)
        out = []
        while not q.empty():
            item = q.get_nowait()
            if item is not None:
                out.append(item)
        return out


class MemoryTransport:
    """A :class:`~connectors.Transport` on a :class:`MemoryBroker`."""

    def __init__(self, broker: MemoryBroker) -> None:
        self._broker = broker
        self._tags = itertools.count(1)
        self._unacked: dict[int, tuple[str, OutboundMessage]] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    def declare(self, slug: str, topics: Sequence[str]) -> None:
        own = queue_name(slug)
        self._broker.queue(own)
        self._broker.queue(dead_letter_queue(slug))
        with self._broker.lock:
            for (exchange, key), names in self._broker.bindings.items():
                if exchange == BUS_EXCHANGE and key.startswith("event."):
                    names.discard(own)
            self._broker.bindings[(BUS_EXCHANGE, direct_key(slug))].add(own)
            for topic in topics:
                self._broker.bindings[(BUS_EXCHANGE, event_key(topic))].add(own)
            self._broker.bindings[(DEAD_LETTER_EXCHANGE, slug)].add(dead_letter_queue(slug))

    def remove(self, slug: str) -> None:
        with self._broker.lock:
            for name in (queue_name(slug), dead_letter_queue(slug), retry_queue(slug)):
                self._broker.queues.pop(name, None)
                for names in self._broker.bindings.values():
                    names.discard(name)

    def publish(self, messages: Sequence[OutboundMessage], *, timeout: float = 30.0) -> None:
        del timeout  # an in-process publish is confirmed at once
        for message in messages:
            self._broker.route(message)

    def consume(self, slug: str, deliver: Deliver, *, prefetch: int = 256) -> None:
        del prefetch
        source = self._broker.queue(queue_name(slug))

        def loop() -> None:
            while not self._stopping.is_set():
                try:
                    item = source.get(timeout=0.05)
                except queue.Empty:
                    continue
                if item is None:
                    break
                tag = next(self._tags)
                with self._lock:
                    self._unacked[tag] = (queue_name(slug), item)
                deliver(_inbound(item, tag))

        thread = threading.Thread(target=loop, name=f"memory-consumer-{slug}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def ack(self, delivery_tags: Sequence[int]) -> None:
        with self._lock:
            for tag in delivery_tags:
                self._unacked.pop(tag, None)

    def requeue(self, delivery_tags: Sequence[int]) -> None:
        with self._lock:
            items = [self._unacked.pop(tag) for tag in delivery_tags if tag in self._unacked]
        for name, message in items:
            self._broker.queue(name).put(message)

    def retry_later(self, slug: str, message: InboundMessage, delay: float) -> None:
        attempt = int(str(message.headers.get(ATTEMPT_HEADER, 0))) + 1
        parked = OutboundMessage(
            routing_key=direct_key(slug),
            body=message.body,
            message_id=message.message_id or "",
            correlation_id=message.correlation_id,
            headers={
                **{k: str(v) for k, v in message.headers.items()},
                ATTEMPT_HEADER: str(attempt),
            },
        )
        timer = threading.Timer(delay, self._broker.route, args=(parked,))
        timer.daemon = True
        timer.start()
        self.ack([message.delivery_tag])

    def take_dead_letters(self, slug: str, keep: Keep, *, limit: int = 500) -> int:
        source = self._broker.queue(dead_letter_queue(slug))
        taken: list[OutboundMessage] = []
        while len(taken) < limit:
            try:
                item = source.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                taken.append(item)
        try:
            keep([_inbound(item, next(self._tags)) for item in taken])
        except BaseException:
            for item in taken:
                source.put(item)
            raise
        return len(taken)

    def ping(self) -> bool:
        return not self._stopping.is_set()

    def close(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=2)
        self.requeue(list(self._unacked))


def _inbound(item: OutboundMessage, tag: int) -> InboundMessage:
    return InboundMessage(
        body=item.body,
        delivery_tag=tag,
        routing_key=item.routing_key,
        redelivered=False,
        message_id=item.message_id,
        correlation_id=item.correlation_id,
        headers=dict(item.headers),
    )
