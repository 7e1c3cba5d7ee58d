"""The seam between the connector and the broker: neutral message types and the
:class:`Transport` protocol, with :class:`PikaTransport` (RabbitMQ) and :class:`MemoryTransport`
(in process, for fast tests) behind it. Nothing past this seam sees pika.

Names follow docs/protocol.md §11: the bus topic exchange ``tabadul.bus``, the dead-letter
exchange ``tabadul.dlx``, per subsystem a quorum queue ``tabadul.q.<slug>`` bound to
``to.<slug>`` and to ``event.<type>`` for each subscribed topic, and a dead-letter queue
``tabadul.dlq.<slug>``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

BUS_EXCHANGE = "tabadul.bus"
DEAD_LETTER_EXCHANGE = "tabadul.dlx"
CONTENT_TYPE = "application/vnd.tabadul.envelope+json; v=1"
REJECT_HEADER = "x-tabadul-reject"
REASON_HEADER = "x-tabadul-reason"
ATTEMPT_HEADER = "x-tabadul-attempt"


def queue_name(slug: str) -> str:
    return f"tabadul.q.{slug}"


def dead_letter_queue(slug: str) -> str:
    return f"tabadul.dlq.{slug}"


def retry_queue(slug: str) -> str:
    """Where a delivery waits before it is tried again (per-message TTL, then dead-lettered
    back to the bus with ``to.<slug>``)."""
    return f"tabadul.retry.{slug}"


def direct_key(slug: str) -> str:
    """Routing key of a message addressed to one subsystem."""
    return f"to.{slug}"


def event_key(message_type: str) -> str:
    """Routing key of a broadcast event."""
    return f"event.{message_type}"


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A message to publish. ``exchange`` is the bus unless dead-lettering."""

    routing_key: str
    body: bytes
    message_id: str
    correlation_id: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    exchange: str = BUS_EXCHANGE


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A delivery as the connector sees it, whatever the broker library."""

    body: bytes
    delivery_tag: int
    routing_key: str
    redelivered: bool
    message_id: str | None
    correlation_id: str | None
    headers: Mapping[str, object]


Deliver = Callable[[InboundMessage], None]
Keep = Callable[[Sequence[InboundMessage]], None]


class Transport(Protocol):
    """What the connector needs from a broker. Implementations are thread-safe: any thread
    may publish or settle while deliveries arrive on the transport's own thread."""

    def declare(self, slug: str, topics: Sequence[str]) -> None:
        """Create (idempotently) the exchanges, the subsystem's queue and dead-letter queue,
        and bind the queue to ``to.<slug>`` and to ``event.<topic>`` for each topic (removing
        event bindings no longer listed)."""

    def remove(self, slug: str) -> None:
        """Delete the subsystem's queues with what they hold (decommissioning)."""

    def publish(self, messages: Sequence[OutboundMessage], *, timeout: float = 30.0) -> None:
        """Publish persistently and return once the broker confirmed every message; raises
        :class:`~connectors.NotConfirmed` (nothing is known to be sent) or
        :class:`~connectors.TransportError`. Confirms are pipelined, not one per round trip;
        messages unconfirmed when a connection drops are published again after reconnecting
        (so a receiver may see a message twice; the receive pipeline's replay check absorbs
        that)."""

    def consume(self, slug: str, deliver: Deliver, *, prefetch: int = 256) -> None:
        """Start delivering from the subsystem's queue to ``deliver`` (on the transport's
        thread); keeps consuming across reconnects."""

    def ack(self, delivery_tags: Sequence[int]) -> None:
        """Acknowledge deliveries (after the message is durably handled). Tags are opaque;
        tags from before a reconnect are ignored: those messages are delivered again."""

    def requeue(self, delivery_tags: Sequence[int]) -> None:
        """Give deliveries back to the queue at once (e.g. on shutdown)."""

    def retry_later(self, slug: str, message: InboundMessage, delay: float) -> None:
        """Park ``message`` in the subsystem's retry queue for ``delay`` seconds, after which
        it returns to the subsystem's queue; the original delivery is acknowledged once the
        parked copy is confirmed. The header ``x-tabadul-attempt`` counts the attempts."""

    def take_dead_letters(self, slug: str, keep: Keep, *, limit: int = 500) -> int:
        """Take up to ``limit`` messages waiting in the subsystem's dead-letter queue:
        ``keep`` stores them durably, then they are acknowledged (gone from the queue). If
        ``keep`` raises, they stay in the queue. Returns how many were taken."""

    def ping(self) -> bool:
        """Whether the broker is reachable right now (for health checks)."""

    def close(self) -> None:
        """Stop consuming, wait for outstanding confirms, close the connection."""
