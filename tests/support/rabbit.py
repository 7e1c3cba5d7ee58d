"""Raw access to the real RabbitMQ for tests: inject, read and clean up queues, and drop
connections from the broker side. Tests fail (never skip) when the broker is unreachable."""

from __future__ import annotations

import subprocess
import uuid

import pika

URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def channel() -> tuple[pika.BlockingConnection, object]:
    connection = pika.BlockingConnection(pika.URLParameters(URL))
    return connection, connection.channel()


def unique_instance() -> str:
    """An instance code no other test uses, so queue names never collide."""
    return "T" + uuid.uuid4().hex[:8].upper()


def inject(queue: str, body: bytes, *, message_id: str = "injected") -> None:
    """Put bytes straight into a queue, bypassing every sender-side check."""
    connection, ch = channel()
    ch.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2, message_id=message_id))
    connection.close()


def get_all(queue: str) -> list[tuple[pika.BasicProperties, bytes]]:
    """Take every message waiting in ``queue``."""
    connection, ch = channel()
    found = []
    while True:
        _method, properties, body = ch.basic_get(queue, auto_ack=True)
        if body is None:
            break
        found.append((properties, body))
    connection.close()
    return found


def delete_queues(prefix_slug: str) -> None:
    """Delete the queues of every subsystem whose slug starts with ``prefix_slug``."""
    listing = subprocess.run(
        ["rabbitmqctl", "list_queues", "name", "-q", "--no-table-headers"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    connection, ch = channel()
    for name in listing:
        if any(name.startswith(f"tabadul.{kind}.{prefix_slug}") for kind in ("q", "dlq", "retry")):
            ch.queue_delete(name)
    connection.close()


def close_connections(name_prefix: str) -> int:
    """Close, from the broker side, the connections whose client name starts with the prefix."""
    listing = subprocess.run(
        ["rabbitmqctl", "list_connections", "pid", "client_properties", "-q"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    closed = 0
    for line in listing.splitlines()[1:]:
        pid, _, properties = line.partition("\t")
        if f'{{"connection_name","{name_prefix}' in properties:
            subprocess.run(
                ["rabbitmqctl", "close_connection", pid, "test"],
                capture_output=True,
                check=True,
                timeout=60,
            )
            closed += 1
    return closed
