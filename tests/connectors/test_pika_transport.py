"""PikaTransport against the real RabbitMQ on 127.0.0.1:5672 (guest/guest).

These tests fail, never skip, when the broker is unreachable. Each test uses its own slugs
and deletes the queues it made; broker-side connection drops are aimed at this test's own
connections (by connection name), never at other clients of the shared broker.
"""

from __future__ import annotations

import json
import logging
import queue
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pika
import pytest

from connectors import _pika
from connectors._errors import StoreError, TransportError
from connectors._pika import PikaTransport
from connectors._transport import (
    ATTEMPT_HEADER,
    CONTENT_TYPE,
    DEAD_LETTER_EXCHANGE,
    REASON_HEADER,
    REJECT_HEADER,
    InboundMessage,
    OutboundMessage,
    dead_letter_queue,
    direct_key,
    event_key,
    queue_name,
    retry_queue,
)
from tests.support import rabbit

URL = rabbit.URL


class Inbox:
    """Collects deliveries (on the transport's thread) for the test thread to wait on."""

    def __init__(self, transport: PikaTransport | None = None) -> None:
        self.transport = transport  # when set, every delivery is acknowledged at once
        self.messages: queue.Queue[InboundMessage] = queue.Queue()
        self.ids: set[str] = set()
        self.count = 0
        self.changed = threading.Condition()

    def deliver(self, message: InboundMessage) -> None:
        if self.transport is not None:
            self.transport.ack([message.delivery_tag])
        with self.changed:
            self.count += 1
            self.ids.add(message.message_id or "")
            self.changed.notify_all()
        self.messages.put(message)

    def get(self, timeout: float = 10.0) -> InboundMessage:
        return self.messages.get(timeout=timeout)

    def wait_for_ids(self, wanted: set[str], timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: wanted <= self.ids, timeout)

    def assert_empty(self, wait: float = 0.5) -> None:
        with pytest.raises(queue.Empty):
            self.messages.get(timeout=wait)


def _message(key: str, body: bytes = b"{}", **kwargs: Any) -> OutboundMessage:
    return OutboundMessage(
        routing_key=key,
        body=body,
        message_id=str(uuid.uuid4()),
        **kwargs,
    )


@pytest.fixture
def new_slug() -> Iterator[Callable[[], str]]:
    made: list[str] = []

    def new() -> str:
        slug = f"test-{uuid.uuid4().hex[:8]}"
        made.append(slug)
        return slug

    yield new
    connection = pika.BlockingConnection(pika.URLParameters(URL))
    channel = connection.channel()
    for slug in made:
        for name in (queue_name(slug), dead_letter_queue(slug), retry_queue(slug)):
            channel.queue_delete(name)
    connection.close()


@pytest.fixture
def open_transport() -> Iterator[Callable[..., PikaTransport]]:
    made: list[PikaTransport] = []

    def new(**kwargs: Any) -> PikaTransport:
        kwargs.setdefault("name", f"test-{uuid.uuid4().hex[:8]}")
        transport = PikaTransport((URL,), **kwargs)
        made.append(transport)
        return transport

    yield new
    for transport in made:
        transport.close()


def _queue_types() -> dict[str, str]:
    out = subprocess.run(
        ["rabbitmqctl", "list_queues", "name", "type", "--formatter", "json", "-q"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return {row["name"]: row["type"] for row in json.loads(out)}


def test_unreachable_broker_raises_transport_error(monkeypatch):
    """The constructor raises TransportError, naming the URL, when no broker answers."""
    monkeypatch.setattr(_pika, "CONNECT_TIMEOUT", 1.0)
    with pytest.raises(TransportError, match=r"cannot connect to RabbitMQ at amqp://guest:\*\*\*@"):
        PikaTransport(("amqp://guest:guest@127.0.0.1:1/%2F",))


def test_connects_to_the_next_url_when_the_first_is_down(caplog):
    """With a dead node first in ``urls``, the transport connects through the next one."""
    caplog.set_level(logging.INFO, logger="connectors.pika")
    with PikaTransport(("amqp://guest:guest@127.0.0.1:1/%2F", URL), name="test-urls"):
        pass
    messages = [r.getMessage() for r in caplog.records if r.name == "connectors.pika"]
    assert any("cannot connect to amqp://guest:***@127.0.0.1:1/" in m for m in messages)
    assert any("connected to amqp://guest:***@127.0.0.1:5672/" in m for m in messages)


def test_declare_twice_is_idempotent_and_queues_are_quorum(open_transport, new_slug):
    """Declaring twice succeeds, and the queue, dead-letter and retry queues are quorum."""
    transport = open_transport()
    slug = new_slug()
    transport.declare(slug, ["civil.person-updated"])
    transport.declare(slug, ["civil.person-updated"])
    types = _queue_types()
    for name in (queue_name(slug), dead_letter_queue(slug), retry_queue(slug)):
        assert types.get(name) == "quorum", name


def test_declare_removes_event_bindings_no_longer_listed(open_transport, new_slug):
    """A topic dropped from a later declare is unbound; the new one is bound."""
    transport = open_transport()
    slug = new_slug()
    transport.declare(slug, ["a.old"])
    transport.declare(slug, ["a.new"])
    inbox = Inbox(transport)
    transport.consume(slug, inbox.deliver)
    transport.publish([_message(event_key("a.old")), _message(event_key("a.new"))])
    assert inbox.get().routing_key == event_key("a.new")
    inbox.assert_empty()


def test_direct_publish_consume_ack_and_unacked_come_back(open_transport, new_slug):
    """A direct message arrives with its properties; acked ones are gone after reopening,
    the unacked one is delivered again (redelivered)."""
    slug = new_slug()
    first = open_transport()
    first.declare(slug, [])
    sent = [
        _message(direct_key(slug), b'{"n": %d}' % i, correlation_id=f"c{i}", headers={"k": "v"})
        for i in range(3)
    ]
    first.publish(sent)
    inbox = Inbox()
    first.consume(slug, inbox.deliver)
    got = [inbox.get() for _ in sent]
    assert [m.message_id for m in got] == [m.message_id for m in sent]
    assert got[0].body == b'{"n": 0}'
    assert got[0].correlation_id == "c0"
    assert got[0].headers == {"k": "v"}
    assert got[0].routing_key == direct_key(slug)
    assert not got[0].redelivered
    first.ack([got[0].delivery_tag, got[1].delivery_tag])
    first.close()

    second = open_transport()
    again = Inbox(second)
    second.consume(slug, again.deliver)
    back = again.get()
    assert back.message_id == sent[2].message_id
    assert back.redelivered
    again.assert_empty()


def test_published_properties_follow_the_protocol(open_transport, new_slug):
    """Messages are persistent, with the envelope content type and the AMQP message id."""
    transport = open_transport()
    slug = new_slug()
    transport.declare(slug, [])
    message = _message(direct_key(slug))
    transport.publish([message])
    [(properties, _body)] = rabbit.get_all(queue_name(slug))
    assert properties.delivery_mode == 2
    assert properties.content_type == CONTENT_TYPE
    assert properties.message_id == message.message_id


def test_event_fans_out_to_subscribers_only(open_transport, new_slug):
    """An event reaches the two subscribed slugs and not a third subscribed elsewhere."""
    transport = open_transport()
    topic = f"customs.lodged-{uuid.uuid4().hex[:6]}"
    a, b, c = new_slug(), new_slug(), new_slug()
    transport.declare(a, [topic])
    transport.declare(b, [topic, "other.thing"])
    transport.declare(c, ["other.thing"])
    inboxes = {slug: Inbox(transport) for slug in (a, b, c)}
    for slug, inbox in inboxes.items():
        transport.consume(slug, inbox.deliver)
    event = _message(event_key(topic))
    transport.publish([event])
    assert inboxes[a].get().message_id == event.message_id
    assert inboxes[b].get().message_id == event.message_id
    inboxes[c].assert_empty()


def test_direct_key_without_queue_is_an_error_but_unheard_event_is_not(open_transport, new_slug):
    """Publishing to.<slug> with no such queue raises; an event nobody subscribes to is fine."""
    transport = open_transport()
    transport.declare(new_slug(), [])  # make sure the bus exists
    with pytest.raises(TransportError, match="unroutable"):
        transport.publish([_message(direct_key(f"nobody-{uuid.uuid4().hex}"))])
    transport.publish([_message(event_key(f"nobody.listens-{uuid.uuid4().hex}"))])


def test_requeue_gives_the_message_back(open_transport, new_slug):
    """A requeued delivery is delivered again, marked redelivered."""
    transport = open_transport()
    slug = new_slug()
    transport.declare(slug, [])
    transport.publish([_message(direct_key(slug))])
    inbox = Inbox()
    transport.consume(slug, inbox.deliver)
    first = inbox.get()
    transport.requeue([first.delivery_tag])
    second = inbox.get()
    assert second.message_id == first.message_id
    assert second.redelivered
    transport.ack([second.delivery_tag])


def test_retry_later_returns_the_message_after_the_delay(open_transport, new_slug):
    """retry_later parks the message; it comes back after the delay with attempt 1."""
    transport = open_transport()
    slug = new_slug()
    transport.declare(slug, [])
    sent = _message(direct_key(slug), correlation_id="corr", headers={"k": "v"})
    transport.publish([sent])
    inbox = Inbox()
    transport.consume(slug, inbox.deliver)
    first = inbox.get()
    assert ATTEMPT_HEADER not in first.headers
    parked_at = time.monotonic()
    transport.retry_later(slug, first, 0.6)
    again = inbox.get(timeout=15)
    assert time.monotonic() - parked_at >= 0.5
    assert again.message_id == sent.message_id
    assert again.correlation_id == "corr"
    assert again.headers[ATTEMPT_HEADER] == "1"
    assert again.headers["k"] == "v"
    assert again.routing_key == direct_key(slug)
    transport.ack([again.delivery_tag])
    inbox.assert_empty()  # the original was acknowledged


def test_dead_letter_lands_in_the_dead_letter_queue(open_transport, new_slug):
    """A message published to tabadul.dlx with the slug lands in its DLQ, headers intact."""
    transport = open_transport()
    slug = new_slug()
    transport.declare(slug, [])
    headers = {REJECT_HEADER: "forbidden", REASON_HEADER: "no grant for this type"}
    message = _message(slug, b"rejected", headers=headers, exchange=DEAD_LETTER_EXCHANGE)
    transport.publish([message])
    [(properties, body)] = rabbit.get_all(dead_letter_queue(slug))
    assert body == b"rejected"
    assert properties.message_id == message.message_id
    assert headers.items() <= properties.headers.items()  # quorum adds x-delivery-count


def test_dead_letters_are_taken_only_once_kept(open_transport, new_slug):
    """take_dead_letters hands what waits to keep, then removes it; when keep fails the
    messages stay in the queue, in order; an undeclared queue is a TransportError."""
    transport = open_transport()
    slug = new_slug()
    transport.declare(slug, [])
    headers = {REJECT_HEADER: "forbidden", REASON_HEADER: "no grant"}
    sent = [
        _message(slug, f"dead-{i}".encode(), headers=headers, exchange=DEAD_LETTER_EXCHANGE)
        for i in range(3)
    ]
    transport.publish(sent)

    def failing(_messages):
        raise StoreError("disk full")

    with pytest.raises(StoreError):
        transport.take_dead_letters(slug, failing)
    kept: list = []
    assert transport.take_dead_letters(slug, kept.extend, limit=2) == 2
    assert transport.take_dead_letters(slug, kept.extend) == 1
    assert [m.body for m in kept] == [b"dead-0", b"dead-1", b"dead-2"]
    assert kept[0].headers[REJECT_HEADER] == "forbidden"
    assert kept[0].message_id == sent[0].message_id
    assert transport.take_dead_letters(slug, kept.extend) == 0
    assert rabbit.get_all(dead_letter_queue(slug)) == []
    with pytest.raises(TransportError):
        transport.take_dead_letters(new_slug(), kept.extend)


def test_pipelined_confirms_publish_5000_in_one_call(open_transport, new_slug):
    """5,000 small messages in one publish() call are all confirmed (rate printed)."""
    transport = open_transport()
    slug = new_slug()
    transport.declare(slug, [])
    messages = [_message(direct_key(slug), b"x" * 200) for _ in range(5000)]
    start = time.perf_counter()
    transport.publish(messages, timeout=120)
    elapsed = time.perf_counter() - start
    rate = f"{5000 / elapsed:,.0f} msg/s"
    print(f"published 5000 with confirms in {elapsed:.3f} s: {rate}")  # noqa: T201 - reported, not asserted
    types = _queue_types()
    assert types[queue_name(slug)] == "quorum"
    inbox = Inbox(transport)
    transport.consume(slug, inbox.deliver)
    assert inbox.wait_for_ids({m.message_id for m in messages}, timeout=60)


def test_broker_side_connection_drop_loses_nothing(open_transport, new_slug, caplog):
    """After the broker drops the connections mid-traffic, the transports reconnect, every
    published message is delivered (duplicates allowed) and consumption resumes."""
    caplog.set_level(logging.WARNING, logger="connectors.pika")
    name = f"test-drop-{uuid.uuid4().hex[:8]}"
    slug = new_slug()
    producer = open_transport(name=f"{name}-pub", reconnect_max_delay=1.0)
    consumer = open_transport(name=f"{name}-sub", reconnect_max_delay=1.0)
    producer.declare(slug, [])
    inbox = Inbox(consumer)
    consumer.consume(slug, inbox.deliver)

    sent: set[str] = set()
    failures: list[BaseException] = []
    stop = threading.Event()

    def publish_until_stopped() -> None:
        try:
            while not stop.is_set():
                batch = [_message(direct_key(slug), b"y" * 300) for _ in range(200)]
                producer.publish(batch, timeout=60)
                sent.update(m.message_id for m in batch)
                time.sleep(0.01)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            failures.append(exc)

    publisher = threading.Thread(target=publish_until_stopped)
    publisher.start()
    try:
        drops = 0
        for _ in range(3):
            time.sleep(0.7)
            drops += rabbit.close_connections(name)
        time.sleep(1.5)  # publishing and consuming go on after the last drop
        delivered_before_stop = inbox.count
        time.sleep(0.5)
    finally:
        stop.set()
        publisher.join(90)
    assert not failures, failures
    assert drops >= 4  # both connections, more than once
    assert inbox.wait_for_ids(sent, timeout=60), len(sent - inbox.ids)
    assert inbox.count > delivered_before_stop  # consumption resumed after the drops
    again = inbox.count - len(sent)
    print(f"sent {len(sent)}, delivered {inbox.count} ({again} again)")  # noqa: T201 - reported
    assert any("connection lost" in r.getMessage() for r in caplog.records)


def test_consume_from_a_missing_queue_raises(open_transport, new_slug):
    """consume() of a slug that was never declared raises TransportError (404)."""
    transport = open_transport()
    with pytest.raises(TransportError, match="404"):
        transport.consume(f"never-{uuid.uuid4().hex[:8]}", Inbox().deliver)
    transport.declare(new_slug(), [])  # the transport still works


def test_close_is_idempotent_and_refuses_later_publishes(open_transport, new_slug):
    """close() twice is fine; publishing afterwards raises TransportError."""
    transport = open_transport()
    with transport:
        transport.declare(new_slug(), [])
    transport.close()
    with pytest.raises(TransportError, match="closed"):
        transport.publish([_message(direct_key("x"))])


def test_remove_deletes_the_subsystem_queues(open_transport, new_slug):
    """remove() deletes the queue, dead-letter and retry queues, waiting messages included,
    and can be called again."""
    transport = open_transport()
    slug = new_slug()
    transport.declare(slug, [])
    transport.publish([_message(direct_key(slug))])
    transport.remove(slug)
    transport.remove(slug)
    names = _queue_types()
    assert not {queue_name(slug), dead_letter_queue(slug), retry_queue(slug)} & names.keys()
