"""Bus benchmark: Tabadul end to end on the real RabbitMQ beside raw pika, in one run.

    python -m bench.bus [--messages 20000] [--requests 300]      # or: tabadul bench bus --json

The raw baseline is pika itself moving the same number of same-size persistent messages with
pipelined publisher confirms through a quorum queue, producer to consumer. The bus figure is
Tabadul end to end: customs publishes declarations (validate, sign, log durably, publish with
confirms); tax receives them (verify, check, validate, log durably, record in its inbox, ack,
handler). The RPC figures are tax asking the civil registry, one request at a time.

Goals on a 2-core machine: ratio at least 0.5; RPC p50 at most 5 ms, p99 at most 25 ms.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pika

from bench._raw_pika import raw_pika_throughput
from bench._timing import machine
from connectors import Delivery, PikaTransport, RuntimeSettings
from schemas import default_registry
from tabadul.localbus import LocalBus
from tabadul.sandbox import Sandbox

LODGED = "customs.declaration-lodged"
LOOKUP = "civil.person-lookup.request"
LOOKUP_REPLY = "civil.person-lookup.response"
URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
Progress = Callable[[str], None]


class _Counter:
    def __init__(self, target: int) -> None:
        self.count = 0
        self.target = target
        self.done = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, _delivery: Delivery, _ctx: Any) -> None:
        with self.lock:
            self.count += 1
            if self.count >= self.target:
                self.done.set()


def _bus(folder: Path, instance: str, messages: int) -> tuple[LocalBus, _Counter]:
    registry = default_registry()
    sandbox = Sandbox(instance)
    civil = sandbox.add(f"{instance}/GOV/MOI/CIVIL-REGISTRY")
    tax = sandbox.add(f"{instance}/GOV/MEF/TAX")
    customs = sandbox.add(f"{instance}/GOV/MEF/CUSTOMS")
    for entry in registry.entries():
        sandbox.classify(entry.type, entry.classification.value, entry.version, entry.digest)
    sandbox.publish(customs, LODGED)
    sandbox.subscribe(tax, LODGED)
    sandbox.provide(civil, LOOKUP, LOOKUP_REPLY)
    sandbox.grant(tax, LOOKUP, civil)
    counter = _Counter(messages)
    names = itertools.count()
    bus = LocalBus(
        sandbox,
        folder,
        lambda: PikaTransport(name=f"bench-{instance}-{next(names)}"),
        settings=RuntimeSettings(prefetch=1000, batch=500, handler_workers=2),
    )
    reply = registry.latest(LOOKUP_REPLY).examples[0]
    bus.connector("civil", civil, {LOOKUP: lambda _d, _c: reply})
    bus.connector("tax", tax, {LODGED: counter})
    bus.connector("customs", customs)
    for connector in bus.connectors.values():
        connector.start()
    return bus, counter


def _cleanup(instance: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(URL))
    channel = connection.channel()
    for name in ("CIVIL-REGISTRY", "TAX", "CUSTOMS"):
        slug = f"{instance}.GOV.{'MOI' if name.startswith('CIVIL') else 'MEF'}.{name}"
        for kind in ("q", "dlq", "retry"):
            channel.queue_delete(f"tabadul.{kind}.{slug}")
    connection.close()


def run(
    messages: int = 20_000, requests: int = 300, progress: Progress | None = None
) -> dict[str, Any]:
    """Run the bus benchmark; returns the report (see the module docstring)."""
    say = progress or (lambda _step: None)
    registry = default_registry()
    declaration = registry.latest(LODGED).examples[0]
    instance = "B" + uuid.uuid4().hex[:8].upper()
    with tempfile.TemporaryDirectory() as tmp:
        bus, counter = _bus(Path(tmp), instance, messages)
        try:
            customs, tax = bus.connectors["customs"], bus.connectors["tax"]
            size = len(customs._build(LODGED, "event", None, declaration).data)  # noqa: SLF001
            say(f"raw pika, {messages} messages of {size} bytes")
            raw = raw_pika_throughput(messages, size)
            say(f"Tabadul, {messages} events customs -> tax")
            start = time.perf_counter()
            for first in range(0, messages, 500):
                customs.publish_many(LODGED, [declaration] * min(500, messages - first))
            counter.done.wait(timeout=600)
            elapsed = time.perf_counter() - start
            say(f"{requests} requests tax -> civil registry")
            asked = registry.latest(LOOKUP).examples[0]
            civil = bus.connectors["civil"].me
            latencies = []
            for _ in range(requests):
                began = time.perf_counter()
                tax.request(LOOKUP, civil, asked)
                latencies.append((time.perf_counter() - began) * 1000)
        finally:
            bus.stop()
            _cleanup(instance)
    latencies.sort()
    bus_rate = counter.count / elapsed
    return {
        "benchmark": "bus",
        "machine": machine(),
        "messages": messages,
        "delivered": counter.count,
        "envelope_bytes": size,
        "raw_msgs_per_s": round(raw),
        "bus_msgs_per_s": round(bus_rate),
        "ratio": round(bus_rate / raw, 3),
        "rpc_requests": requests,
        "rpc_p50_ms": round(latencies[len(latencies) // 2], 2),
        "rpc_p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
        "goals": {"ratio": ">= 0.5", "rpc_p50_ms": "<= 5", "rpc_p99_ms": "<= 25"},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.messages, args.requests), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
