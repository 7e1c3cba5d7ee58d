"""Declarations on the real RabbitMQ to two subscribers, one scoring and one not, each in
its own process as deployed (for :mod:`bench.risk`).

The parent publishes; each child is a connector whose handler records when it finished
(``time.perf_counter``, the system's monotonic clock, which both processes share) and
writes those times to a file once it has seen every declaration.
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
from connectors import Delivery
from connectors.ministries import customs
from exchange.sandbox import Sandbox
from risk import Model, ModelStore, RiskService
from schemas import default_registry

GAP = 0.02  # seconds between two declarations: latency, not throughput
URL = "amqp://guest:guest@localhost:5672/%2F"
SUBSCRIBERS = ("plain", "risk")
_PATHS = {"desk": "GOV/MEF/CUSTOMS", "plain": "GOV/MEF/PLAIN", "risk": "GOV/MEF/RISK"}


def latencies(model: Model, count: int) -> tuple[list[float], list[float]]:
    """Milliseconds from publishing each of ``count`` declarations to the end of the plain
    subscriber's handler and of the scoring one's, declaration by declaration (those both
    handled)."""
    instance = "B" + uuid.uuid4().hex[:6].upper()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ModelStore(folder / "model").save(model, training={})
        sandbox = Sandbox(instance)
        parties = {name: sandbox.add(f"{instance}/{path}") for name, path in _PATHS.items()}
        for entry in default_registry().entries():
            sandbox.classify(entry.type, entry.classification.value, entry.version, entry.digest)
        sandbox.publish(parties["desk"], customs.DECLARATION_LODGED)
        for name in SUBSCRIBERS:
            sandbox.subscribe(parties[name], customs.DECLARATION_LODGED)
        configs = write_configs(folder, sandbox, parties, runtime="")
        command = [sys.executable, "-m", "bench._online", "--model", str(folder / "model")]
        children = [
            subprocess.Popen(  # noqa: S603 - our own module with our own arguments
                [*command, "--child", name, "--config", str(configs[name]), "--count", str(count)]
            )
            for name in SUBSCRIBERS
        ]
        publisher = None
        sent: dict[str, float] = {}
        try:
            for name in SUBSCRIBERS:
                wait_for(configs[name].with_suffix(".ready"), 60)
            publisher = connector_from(configs["desk"])
            publisher.start()
            samples = [lodged for lodged, _ in customs.declarations()]
            for i in range(count):
                number = f"301-2026-{i:07d}"
                declaration = dict(samples[i % len(samples)], declaration_number=number)
                sent[number] = time.perf_counter()
                publisher.publish(customs.DECLARATION_LODGED, declaration)
                time.sleep(GAP)
            done = {
                name: json.loads(wait_for(configs[name].with_suffix(".done"), 120))
                for name in SUBSCRIBERS
            }
        finally:
            if publisher is not None:
                publisher.stop()
            stop(children)
            remove_queues(URL, instance, _PATHS.values())
    both = [n for n in sent if all(n in done[name] for name in SUBSCRIBERS)]
    plain, scoring = ([(done[name][n] - sent[n]) * 1000 for n in both] for name in SUBSCRIBERS)
    return plain, scoring


def _child(name: str, config: Path, model: Path, count: int) -> None:
    """A subscriber until SIGTERM; ``risk`` assesses each declaration with the risk service
    (score, lane, reasons for red and yellow, the assessment kept), ``plain`` does nothing."""
    connector = connector_from(config)
    service = RiskService(ModelStore(model)) if name == "risk" else None
    finished = threading.Event()
    ended: dict[str, float] = {}
    lock = threading.Lock()

    def handle(delivery: Delivery, _ctx: Any) -> None:
        if service is not None:
            service.assess(delivery.payload)
        at = time.perf_counter()
        with lock:
            ended[delivery.payload["declaration_number"]] = at
            if len(ended) == count:
                signal_file(config.with_suffix(".done"), json.dumps(ended))

    connector.handlers[customs.DECLARATION_LODGED] = handle
    signal.signal(signal.SIGTERM, lambda *_: finished.set())
    connector.start()
    signal_file(config.with_suffix(".ready"), "ready")
    finished.wait()
    connector.stop()
    if service is not None:
        service.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="a subscriber of the online risk bench")
    parser.add_argument("--child", choices=SUBSCRIBERS, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args(argv)
    _child(args.child, args.config, args.model, args.count)


if __name__ == "__main__":
    main()
