"""Prometheus metrics of one connector (its own registry, so several connectors can share a
process in tests and benchmarks)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple[str, str], Any] = {}
        self.received = Counter(
            "tabadul_messages_received",
            "Messages accepted, by type",
            ["type"],
            registry=self.registry,
        )
        self.sent = Counter(
            "tabadul_messages_sent",
            "Messages sent and confirmed, by type",
            ["type"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "tabadul_messages_rejected",
            "Messages refused, by reject code",
            ["code"],
            registry=self.registry,
        )
        self.refused_by_receiver = Counter(
            "tabadul_messages_refused_by_receiver",
            "Messages of ours a receiver refused, by reject code (from its receipts)",
            ["code"],
            registry=self.registry,
        )
        self.handler_seconds = Histogram(
            "tabadul_handler_seconds",
            "Handler latency, by type",
            ["type"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
        )
        self.log_size = Gauge(
            "tabadul_log_records", "Records in the message log", registry=self.registry
        )
        self.directory_serial = Gauge(
            "tabadul_directory_serial", "Serial of the directory in use", registry=self.registry
        )

    def count(self, family: str, label: str) -> None:
        """Add one to ``received``/``sent`` (by type) or ``rejected`` (by code); the labelled
        children are cached, as looking them up costs more than counting."""
        child = self._children.get((family, label))
        if child is None:
            metric: Counter = getattr(self, family)
            child = self._children[(family, label)] = metric.labels(label)
        child.inc()

    def totals(self, family: str) -> dict[str, int]:
        """Current counts of ``received``/``sent`` (by type) or ``rejected`` (by code)."""
        out: dict[str, int] = {}
        for (name, label), child in list(self._children.items()):
            if name == family:
                out[label] = int(child._value.get())  # noqa: SLF001 - prometheus keeps it there
        return out

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
