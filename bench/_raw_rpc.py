"""The raw baseline of the bus benchmark's RPC: plain pika request/response through two
fresh quorum queues with the durability a Tabadul request has, and nothing else (no
envelope, no signature, no validation).

    python -m bench._raw_rpc [--n 300]      # prints JSON

The requester commits a SQLite transaction (its log of the request, synchronous FULL),
publishes the request persistent with a publisher confirm and waits for the response; the
provider, in another thread with its own connection, commits one transaction (its log and
stored response together), publishes the response the same way and acknowledges the
request; the requester commits again (its log of the response). So three fsyncs and two
confirmed quorum-queue hops, as in ``tabadul bench bus``'s RPC with its provider's commits
merged into one.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pika  # type: ignore[import-untyped]  # pika ships no type information

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
_PERSISTENT = pika.BasicProperties(delivery_mode=2)


def _database(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS log (id TEXT, body BLOB)")
    return db


def _commit(db: sqlite3.Connection, rows: list[tuple[str, bytes]]) -> None:
    db.execute("BEGIN")
    db.executemany("INSERT INTO log VALUES (?, ?)", rows)
    db.execute("COMMIT")


def _channel(url: str) -> tuple[Any, Any]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    return connection, channel


def _provide(
    url: str,
    queues: tuple[str, str],
    db: sqlite3.Connection,
    ready: threading.Event,
    stop: threading.Event,
) -> None:
    """The provider: answer each request on ``queues`` (requests, responses)."""
    requests, responses = queues
    connection, channel = _channel(url)
    channel.basic_qos(prefetch_count=1)
    ready.set()
    try:
        for method, _props, body in channel.consume(requests, inactivity_timeout=0.1):
            if stop.is_set():
                break
            if method is None:
                continue
            answer = b"answer to " + body
            _commit(db, [("request", body), ("response", answer)])  # one transaction
            channel.basic_publish("", responses, answer, _PERSISTENT)  # confirmed
            channel.basic_ack(method.delivery_tag)
    finally:
        connection.close()


def raw_rpc_latencies(n: int = 300, size: int = 700, url: str = DEFAULT_URL) -> list[float]:
    """``n`` raw request/response round trips, one at a time; their latencies in ms."""
    name = f"tabadul.raw-rpc.{uuid.uuid4().hex[:8]}"
    requests, responses = f"{name}.requests", f"{name}.responses"
    connection, channel = _channel(url)
    quorum = {"x-queue-type": "quorum"}
    for queue in (requests, responses):
        channel.queue_declare(queue, durable=True, arguments=quorum)
    stop, ready = threading.Event(), threading.Event()
    latencies = []
    with tempfile.TemporaryDirectory() as tmp:
        asker, answerer = _database(Path(tmp) / "asker.db"), _database(Path(tmp) / "answerer.db")
        provider = threading.Thread(
            target=_provide, args=(url, (requests, responses), answerer, ready, stop), daemon=True
        )
        provider.start()
        ready.wait(30)
        answers = channel.consume(responses, inactivity_timeout=30)
        try:
            for i in range(n):
                body = b"%08d" % i + b"x" * (size - 8)
                began = time.perf_counter()
                _commit(asker, [("sent", body)])
                channel.basic_publish("", requests, body, _PERSISTENT)  # confirmed
                method, _props, answer = next(answers)
                if method is None:
                    raise TimeoutError("no raw response within 30 s")
                _commit(asker, [("received", answer)])
                channel.basic_ack(method.delivery_tag)
                latencies.append((time.perf_counter() - began) * 1000)
        finally:
            stop.set()
            provider.join(10)
            channel.cancel()
            for queue in (requests, responses):
                channel.queue_delete(queue)
            connection.close()
            asker.close()
            answerer.close()
    return latencies


def percentiles(latencies: list[float]) -> tuple[float, float]:
    """(p50, p99) of ``latencies``, in the bus benchmark's way."""
    ordered = sorted(latencies)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--size", type=int, default=700)
    args = parser.parse_args()
    p50, p99 = percentiles(raw_rpc_latencies(args.n, args.size))
    print(json.dumps({"raw_rpc_p50_ms": round(p50, 2), "raw_rpc_p99_ms": round(p99, 2)}))


if __name__ == "__main__":
    main()
