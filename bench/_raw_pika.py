"""The raw baseline of the bus benchmark: plain pika moving persistent messages through a
fresh quorum queue, producer to consumer in the same run, with pipelined publisher confirms
and consumer acks; no envelope, no signatures, no log.

    python -m bench._raw_pika [--n 20000] [--size 700]      # prints JSON

Both sides use pika's asynchronous API (``SelectConnection``) on one IO loop in the calling
thread, each with its own connection: the publisher keeps up to ``window`` messages
unconfirmed (confirms are pipelined, never waited for one by one); the consumer acks each
delivery with ``prefetch`` outstanding. The defaults match ``PikaTransport``'s. The rate is
``n`` over the time from the first publish to the moment every message is both confirmed to
the publisher and acknowledged by the consumer.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from typing import Any

# pika ships no type information; its objects are Any here.
import pika  # type: ignore[import-untyped]
from pika.adapters.select_connection import IOLoop  # type: ignore[import-untyped]

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


class _Run:
    """One measurement; every method runs on the IO loop."""

    def __init__(self, n: int, size: int, queue: str, window: int, prefetch: int) -> None:
        self.n, self.queue, self.window, self.prefetch = n, queue, window, prefetch
        self.body = b"x" * size
        self.properties = pika.BasicProperties(delivery_mode=2)
        self.loop: Any = IOLoop()
        self.publisher: Any = None
        self.consumer: Any = None
        self.publish_channel: Any = None
        self.ready = 0
        self.published = 0
        self.confirmed = 0
        self.acked = 0
        self.started = 0.0
        self.finished = 0.0
        self.error: str | None = None

    def connect(self, url: str) -> None:
        parameters = pika.URLParameters(url)
        for role in ("publisher", "consumer"):
            setattr(
                self,
                role,
                pika.SelectConnection(
                    parameters,
                    on_open_callback=getattr(self, f"_{role}_open"),
                    on_open_error_callback=self._failed,
                    on_close_callback=self._closed,
                    custom_ioloop=self.loop,
                ),
            )

    def _failed(self, _connection: Any, error: object) -> None:
        self.error = self.error or f"connection failed: {error!r}"
        self.loop.stop()

    def _closed(self, _connection: Any, reason: object) -> None:
        if not self.finished:
            self.error = self.error or f"connection closed: {reason!r}"
        if all(c.is_closed for c in (self.publisher, self.consumer) if c is not None):
            self.loop.stop()
        elif self.error:
            self._close_all()

    def _close_all(self) -> None:
        for connection in (self.publisher, self.consumer):
            if connection is not None and connection.is_open:
                connection.close()

    def timeout(self) -> None:
        self.error = f"timed out: {self.confirmed} confirmed, {self.acked} acked of {self.n}"
        self._close_all()
        self.loop.stop()

    def _publisher_open(self, connection: Any) -> None:
        connection.channel(on_open_callback=self._publisher_channel)

    def _publisher_channel(self, channel: Any) -> None:
        self.publish_channel = channel
        channel.confirm_delivery(self._on_confirm, callback=lambda _frame: self._one_ready())

    def _consumer_open(self, connection: Any) -> None:
        connection.channel(on_open_callback=self._consumer_channel)

    def _consumer_channel(self, channel: Any) -> None:
        def consume(_frame: Any) -> None:
            channel.basic_consume(
                self.queue, self._on_message, callback=lambda _frame: self._one_ready()
            )

        channel.basic_qos(prefetch_count=self.prefetch, callback=consume)

    def _one_ready(self) -> None:
        self.ready += 1
        if self.ready == 2:
            self.started = time.perf_counter()
            self._pump()

    def _pump(self) -> None:
        publish = self.publish_channel.basic_publish
        while self.published < self.n and self.published - self.confirmed < self.window:
            publish("", self.queue, self.body, self.properties)
            self.published += 1

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        if isinstance(method, pika.spec.Basic.Nack):
            self.error = "the broker nacked a message"
            self._close_all()
            return
        # Delivery tags count publishes from 1; a multiple ack confirms up to its tag.
        self.confirmed = (
            max(self.confirmed, method.delivery_tag) if method.multiple else (self.confirmed + 1)
        )
        self._pump()
        self._maybe_done()

    def _on_message(self, channel: Any, method: Any, _properties: Any, _body: bytes) -> None:
        channel.basic_ack(method.delivery_tag)
        self.acked += 1
        self._maybe_done()

    def _maybe_done(self) -> None:
        if self.confirmed >= self.n and self.acked >= self.n and not self.finished:
            self.finished = time.perf_counter()
            self._close_all()


def raw_pika_throughput(
    n: int,
    size: int,
    url: str = DEFAULT_URL,
    *,
    window: int = 1000,
    prefetch: int = 256,
) -> float:
    """Messages per second that raw pika moves end to end (first publish to last ack) through
    a fresh durable quorum queue, persistent, with pipelined confirms. The queue is deleted
    afterwards. Raises ``RuntimeError`` if the broker fails or the run takes over
    ``max(60, n / 500)`` seconds."""
    queue = f"bench.raw.{uuid.uuid4().hex[:12]}"
    admin = pika.BlockingConnection(pika.URLParameters(url))
    try:
        admin.channel().queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
        run = _Run(n, size, queue, window, prefetch)
        run.connect(url)
        run.loop.call_later(max(60.0, n / 500), run.timeout)
        run.loop.start()
        run.loop.close()
        if run.error or not run.finished:
            raise RuntimeError(f"raw pika baseline failed: {run.error}")
        return n / (run.finished - run.started)
    finally:
        admin.channel().queue_delete(queue)
        admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=700)
    parser.add_argument("--url", default=DEFAULT_URL)
    args = parser.parse_args()
    rate = raw_pika_throughput(args.n, args.size, args.url)
    print(json.dumps({"raw_pika_per_s": round(rate), "n": args.n, "size": args.size}))


if __name__ == "__main__":
    main()
