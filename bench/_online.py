"""Declarations on the real RabbitMQ to two subscribers, one scoring and one not (for
:mod:`bench.risk`)."""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from connectors import Delivery, LocalBus, PikaTransport
from connectors.ministries import customs
from exchange.sandbox import Sandbox
from risk import Model, ModelStore, RiskService
from schemas import default_registry

GAP = 0.02  # seconds between two declarations: latency, not throughput


def latencies(model: Model, count: int) -> tuple[list[float], list[float]]:
    """Milliseconds from publishing each of ``count`` declarations to the end of the plain
    subscriber's handler and of the scoring one's."""
    instance = "B" + uuid.uuid4().hex[:6].upper()
    with tempfile.TemporaryDirectory() as folder:
        store = ModelStore(Path(folder) / "model")
        store.save(model, training={})
        service = RiskService(store)
        sandbox = Sandbox(instance)
        desk = sandbox.add(f"{instance}/GOV/MEF/CUSTOMS")
        subscribers = {
            name: sandbox.add(f"{instance}/GOV/MEF/{name.upper()}") for name in ("plain", "risk")
        }
        for entry in default_registry().entries():
            sandbox.classify(entry.type, entry.classification.value, entry.version, entry.digest)
        sandbox.publish(desk, customs.DECLARATION_LODGED)
        for party in subscribers.values():
            sandbox.subscribe(party, customs.DECLARATION_LODGED)
        bus = LocalBus(sandbox, Path(folder) / "bus", lambda: PikaTransport(name=instance))
        sent: dict[str, float] = {}
        done: dict[str, dict[str, float]] = {"plain": {}, "risk": {}}
        lock = threading.Lock()

        def handler(name: str) -> Any:
            def handle(delivery: Delivery, _ctx: Any) -> None:
                if name == "risk":
                    service.assess(delivery.payload)
                with lock:
                    done[name][delivery.payload["declaration_number"]] = time.perf_counter()

            return handle

        publisher = bus.connector("customs", desk)
        for name, party in subscribers.items():
            handlers = {customs.DECLARATION_LODGED: handler(name)}
            bus.connector(name, party, handlers).start()
        publisher.start()
        try:
            samples = [lodged for lodged, _ in customs.declarations()]
            for i in range(count):
                declaration = dict(
                    samples[i % len(samples)], declaration_number=f"301-2026-{i:07d}"
                )
                sent[declaration["declaration_number"]] = time.perf_counter()
                publisher.publish(customs.DECLARATION_LODGED, declaration)
                time.sleep(GAP)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and min(len(d) for d in done.values()) < count:
                time.sleep(0.05)
        finally:
            bus.stop()
            service.close()
            cleaner = PikaTransport(name=f"{instance}-cleanup")
            for party in (desk, *subscribers.values()):
                cleaner.remove(party.subsystem.slug)
            cleaner.close()
    plain, scoring = (
        [(done[name][n] - sent[n]) * 1000 for n in sent if n in done[name]]
        for name in ("plain", "risk")
    )
    return plain, scoring
