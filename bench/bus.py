"""Bus benchmark: Tabadul end to end on the real RabbitMQ beside raw pika, in one run.

    python -m bench.bus [--messages 20000] [--requests 300]      # or: tabadul bench bus --json

The raw baseline is pika itself moving the same number of same-size persistent messages with
pipelined publisher confirms through a quorum queue, producer to consumer.

The bus figure is Tabadul end to end, each connector in its own process as deployed (built
from a configuration file by ``connectors.build_connector``): customs publishes declarations
(validate, sign, log durably, publish with confirms) and tax receives them (verify, check,
validate, log durably, record in its inbox, ack, handler). The rate is the number of events
over the time from the first publish to the last handler call. The RPC figures are a tax
desk asking the civil registry's connector (another process), one request at a time.
CPU per message: the sending process (customs, from its first publish until the last
receipts are in) and the receiving one (tax, ready to stop), over the number of events.

The raw RPC baseline (``bench._raw_rpc``) is plain pika request/response on two quorum
queues with the same durability (three fsyncs: requester, provider in one transaction,
requester; two confirmed publishes), measured in the same run.

Goals on a 2-core machine: ratio at least 0.5; RPC p50 at most 1.5 times the raw RPC's,
p99 at most twice its p99.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench._children import (
    connector_from,
    remove_queues,
    signal_file,
    stop,
    wait_for,
    write_configs,
)
from bench._raw_pika import raw_pika_throughput
from bench._raw_rpc import percentiles, raw_rpc_latencies
from bench._timing import machine
from connectors import Connector, Delivery
from exchange import SubsystemId
from exchange.sandbox import Party, Sandbox
from schemas import default_registry

LODGED = "customs.declaration-lodged"
LOOKUP = "civil.person-lookup.request"
LOOKUP_REPLY = "civil.person-lookup.response"
URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
Progress = Callable[[str], None]
AGENCIES = {
    "civil": "GOV/MOI/CIVIL-REGISTRY",
    "tax": "GOV/MEF/TAX",
    "customs": "GOV/MEF/CUSTOMS",
    "desk": "GOV/MEF/TAX-DESK",
}


def _write_bus(folder: Path, instance: str) -> dict[str, Path]:
    """Keys, CA certificate, directory and one configuration file per connector."""
    registry = default_registry()
    sandbox = Sandbox(instance)
    parties: dict[str, Party] = {
        name: sandbox.add(f"{instance}/{path}") for name, path in AGENCIES.items()
    }
    for entry in registry.entries():
        sandbox.classify(entry.type, entry.classification.value, entry.version, entry.digest)
    sandbox.publish(parties["customs"], LODGED)
    sandbox.subscribe(parties["tax"], LODGED)
    sandbox.provide(parties["civil"], LOOKUP, LOOKUP_REPLY)
    sandbox.grant(parties["desk"], LOOKUP, parties["civil"])
    return write_configs(
        folder, sandbox, parties, runtime="prefetch = 1000\nbatch = 500\nhandler_workers = 2\n"
    )


def _child(role: str, config: Path, count: int, marker: Path) -> None:
    """A connector process until SIGTERM: tax counts declarations (and writes the time of
    the last one), civil answers lookups."""
    connector = connector_from(config)
    finished = threading.Event()
    if role == "tax":
        state = {"n": 0}
        lock = threading.Lock()

        def count_one(_delivery: Delivery, _ctx: Any) -> None:
            with lock:
                state["n"] += 1
                if state["n"] == count:
                    signal_file(marker.with_suffix(".done"), repr(time.time()))

        connector.handlers[LODGED] = count_one
    else:
        answer = default_registry().latest(LOOKUP_REPLY).examples[0]
        connector.handlers[LOOKUP] = lambda _d, _c: answer
    signal.signal(signal.SIGTERM, lambda *_: finished.set())
    connector.start()
    began = time.process_time()
    signal_file(marker.with_suffix(".ready"), "ready")
    finished.wait()
    # what this process spent between ready and stop: for tax, receiving the events (the
    # pipeline, its handler, done marks, receipts); it is idle during the RPC
    signal_file(marker.with_suffix(".cpu"), repr(time.process_time() - began))
    connector.stop()


def _quiet(connector: Connector, still: float = 1.0, timeout: float = 60.0) -> None:
    """Wait until ``connector``'s message log has not grown for ``still`` seconds."""
    deadline = time.monotonic() + timeout
    size, since = connector.log.size, time.monotonic()
    while time.monotonic() - since < still and time.monotonic() < deadline:
        time.sleep(0.1)
        if connector.log.size != size:
            size, since = connector.log.size, time.monotonic()


def _cleanup(instance: str) -> None:
    remove_queues(URL, instance, AGENCIES.values())


def run(
    messages: int = 20_000, requests: int = 300, progress: Progress | None = None
) -> dict[str, Any]:
    """Run the bus benchmark; returns the report (see the module docstring)."""
    say = progress or (lambda _step: None)
    registry = default_registry()
    declaration = registry.latest(LODGED).examples[0]
    instance = "B" + uuid.uuid4().hex[:8].upper()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        configs = _write_bus(folder, instance)
        children = [
            subprocess.Popen(  # noqa: S603 - our own module with our own arguments
                [
                    sys.executable,
                    "-m",
                    "bench.bus",
                    "--child",
                    role,
                    "--config",
                    str(configs[role]),
                    "--messages",
                    str(messages),
                ],
            )
            for role in ("tax", "civil")
        ]
        customs = desk = None
        try:
            for role in ("tax", "civil"):
                wait_for(configs[role].with_suffix(".ready"), 60)
            customs, desk = connector_from(configs["customs"]), connector_from(configs["desk"])
            customs.start()
            desk.start()
            size = len(customs.outbox.build(LODGED, "event", None, declaration).data)
            say(f"raw pika, {messages} messages of {size} bytes")
            raw = raw_pika_throughput(messages, size)
            say(f"Tabadul, {messages} events customs -> tax (separate processes)")
            start, cpu = time.time(), time.process_time()
            # two sending threads, as an information system calling the local API would:
            # one builds and logs while the other waits for the broker's confirms
            with ThreadPoolExecutor(2) as senders:
                chunks = [
                    [declaration] * min(500, messages - first) for first in range(0, messages, 500)
                ]
                list(senders.map(lambda chunk: customs.publish_many(LODGED, chunk), chunks))
            published = time.time()
            last = float(wait_for(configs["tax"].with_suffix(".done"), 600))
            elapsed = last - start
            _quiet(customs)  # the events' last receipts are in: the RPC runs on a quiet bus
            sender_cpu = time.process_time() - cpu  # customs, building to taking receipts
            say(f"{requests} requests tax desk -> civil registry")
            asked = registry.latest(LOOKUP).examples[0]
            civil = SubsystemId.parse(f"{instance}/{AGENCIES['civil']}")
            latencies = []
            for _ in range(requests):
                began = time.perf_counter()
                desk.request(LOOKUP, civil, asked)
                latencies.append((time.perf_counter() - began) * 1000)
            say(f"{requests} raw pika requests, the same durability (3 fsyncs, 2 confirms)")
            raw_rpc = percentiles(raw_rpc_latencies(requests, size))
        finally:
            for connector in (customs, desk):
                if connector is not None:
                    connector.stop()
            stop(children)
            _cleanup(instance)
        receiver_cpu = float(wait_for(configs["tax"].with_suffix(".cpu"), 60))
    latencies.sort()
    bus_rate = messages / elapsed
    return {
        "benchmark": "bus",
        "machine": machine(),
        "messages": messages,
        "envelope_bytes": size,
        "raw_msgs_per_s": round(raw),
        "bus_msgs_per_s": round(bus_rate),
        "ratio": round(bus_rate / raw, 3),
        "publish_seconds": round(published - start, 3),
        "delivery_seconds": round(elapsed, 3),
        "sender_cpu_us_per_msg": round(sender_cpu / messages * 1e6),
        "receiver_cpu_us_per_msg": round(receiver_cpu / messages * 1e6),
        "rpc_requests": requests,
        "rpc_p50_ms": round(latencies[len(latencies) // 2], 2),
        "rpc_p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
        "raw_rpc_p50_ms": round(raw_rpc[0], 2),
        "raw_rpc_p99_ms": round(raw_rpc[1], 2),
        "goals": {
            "ratio": ">= 0.5",
            "rpc_p50_ms": f"<= 1.5 x raw ({1.5 * raw_rpc[0]:.2f})",
            "rpc_p99_ms": f"<= 2 x raw ({2 * raw_rpc[1]:.2f})",
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--child", choices=["tax", "civil"], help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.config, args.messages, args.config)
        return 0
    print(json.dumps(run(args.messages, args.requests), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
