"""Exchange traffic for the console's dashboard and the management API's ``GET /traffic``,
read from the connectors' Prometheus ``/metrics`` pages.

Pure functions turn exposition text into :class:`ConnectorTraffic` (what one connector
counted: messages received and sent by type, rejected by code, handler latency by type) and
several sources into a :class:`Dashboard` (totals per connector, per type, per reject code,
latency per type). One thin function, :func:`scrape`, does the HTTP: it fetches each
``/metrics`` URL and, beside it, the connector's ``/health`` for the subsystem's name. A source
that cannot be read is kept, with why, so the page can say it is unreachable.

The metric names are those of ``connectors._metrics.Metrics``::

    tabadul_messages_received_total{type}   tabadul_messages_sent_total{type}
    tabadul_messages_rejected_total{code}   tabadul_handler_seconds (histogram, by type)
    tabadul_log_records                     tabadul_directory_serial
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

RECEIVED = "tabadul_messages_received"
SENT = "tabadul_messages_sent"
REJECTED = "tabadul_messages_rejected"
HANDLER_SECONDS = "tabadul_handler_seconds"
LOG_RECORDS = "tabadul_log_records"
DIRECTORY_SERIAL = "tabadul_directory_serial"
DEFAULT_TIMEOUT = 2.0


class MetricsError(ValueError):
    """Exposition text that cannot be parsed."""


@dataclass(frozen=True, slots=True)
class Latency:
    """One histogram: ``buckets`` are (upper bound, cumulative count), sorted, ending at +Inf."""

    count: float
    total: float
    buckets: tuple[tuple[float, float], ...]

    @property
    def mean(self) -> float | None:
        """Mean seconds, or None before the first observation."""
        return self.total / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile in seconds, estimated as Prometheus's ``histogram_quantile``
        does (linear within the bucket); the largest finite bound when it falls in +Inf."""
        if not 0 <= q <= 1:
            raise ValueError(f"a quantile is between 0 and 1, not {q}")
        if not self.count or not self.buckets:
            return None
        rank = q * self.count
        lower_bound, lower_count = 0.0, 0.0
        for bound, cumulative in self.buckets:
            if cumulative >= rank:
                if math.isinf(bound):
                    return lower_bound
                width = cumulative - lower_count
                if width <= 0:
                    return bound
                return lower_bound + (bound - lower_bound) * (rank - lower_count) / width
            lower_bound, lower_count = bound, cumulative
        return lower_bound

    def merged(self, other: Latency) -> Latency:
        """Two histograms with the same bounds added together (bounds missing on one side
        count as that side's next bound's count, which is exact for identical layouts)."""
        bounds = sorted({b for b, _ in self.buckets} | {b for b, _ in other.buckets})
        return Latency(
            self.count + other.count,
            self.total + other.total,
            tuple(
                (b, _cumulative_at(self.buckets, b) + _cumulative_at(other.buckets, b))
                for b in bounds
            ),
        )


def _cumulative_at(buckets: Sequence[tuple[float, float]], bound: float) -> float:
    """The cumulative count at ``bound``: that of the largest bucket bound not above it."""
    found = 0.0
    for b, cumulative in buckets:
        if b > bound:
            break
        found = cumulative
    return found


@dataclass(frozen=True, slots=True)
class ConnectorTraffic:
    """What one connector's metrics say."""

    received: Mapping[str, float] = field(default_factory=dict)
    sent: Mapping[str, float] = field(default_factory=dict)
    rejected: Mapping[str, float] = field(default_factory=dict)
    latency: Mapping[str, Latency] = field(default_factory=dict)
    log_records: float | None = None
    directory_serial: float | None = None


def _by_label(samples: Iterable[Any], suffix: str, label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for sample in samples:
        if sample.name.endswith(suffix) and label in sample.labels:
            key = str(sample.labels[label])
            out[key] = out.get(key, 0.0) + float(sample.value)
    return out


def _histograms(samples: Iterable[Any]) -> dict[str, Latency]:
    counts: dict[str, float] = {}
    totals: dict[str, float] = {}
    buckets: dict[str, list[tuple[float, float]]] = {}
    for sample in samples:
        kind = sample.labels.get("type")
        if kind is None:
            continue
        if sample.name.endswith("_bucket"):
            bound = float(sample.labels["le"])
            buckets.setdefault(kind, []).append((bound, float(sample.value)))
        elif sample.name.endswith("_count"):
            counts[kind] = float(sample.value)
        elif sample.name.endswith("_sum"):
            totals[kind] = float(sample.value)
    return {
        kind: Latency(
            counts.get(kind, 0.0), totals.get(kind, 0.0), tuple(sorted(buckets.get(kind, [])))
        )
        for kind in sorted(set(counts) | set(buckets))
    }


def parse_metrics(text: str) -> ConnectorTraffic:
    """A connector's traffic from its Prometheus text exposition. Families it does not know
    are ignored; raises :class:`MetricsError` for text that is not an exposition."""
    received: dict[str, float] = {}
    sent: dict[str, float] = {}
    rejected: dict[str, float] = {}
    latency: dict[str, Latency] = {}
    gauges: dict[str, float] = {}
    try:
        families = list(text_string_to_metric_families(text))
    except (ValueError, KeyError, IndexError) as exc:  # the parser's ways of saying "not this"
        raise MetricsError(f"not Prometheus text exposition: {exc}") from exc
    for family in families:
        if family.name == RECEIVED:
            received = _by_label(family.samples, "_total", "type")
        elif family.name == SENT:
            sent = _by_label(family.samples, "_total", "type")
        elif family.name == REJECTED:
            rejected = _by_label(family.samples, "_total", "code")
        elif family.name == HANDLER_SECONDS:
            latency = _histograms(family.samples)
        elif family.name in {LOG_RECORDS, DIRECTORY_SERIAL} and family.samples:
            gauges[family.name] = float(family.samples[0].value)
    return ConnectorTraffic(
        received=received,
        sent=sent,
        rejected=rejected,
        latency=latency,
        log_records=gauges.get(LOG_RECORDS),
        directory_serial=gauges.get(DIRECTORY_SERIAL),
    )


@dataclass(frozen=True, slots=True)
class Source:
    """One ``/metrics`` URL: its traffic, or ``error`` saying why it could not be read."""

    url: str
    name: str
    traffic: ConnectorTraffic | None = None
    error: str | None = None

    @property
    def reachable(self) -> bool:
        return self.traffic is not None


def health_url(metrics_url: str) -> str:
    """The connector's ``/health`` beside its ``/metrics``."""
    if metrics_url.rstrip("/").endswith("/metrics"):
        return metrics_url.rstrip("/")[: -len("/metrics")] + "/health"
    return metrics_url.rstrip("/") + "/health"


def source_name(metrics_url: str, health: object = None) -> str:
    """How the dashboard names a source: the subsystem its ``/health`` reports, else the
    URL's host and port."""
    if isinstance(health, Mapping):
        subsystem = health.get("subsystem")
        if isinstance(subsystem, str) and subsystem.strip():
            return subsystem.strip()
    parts = urlsplit(metrics_url)
    return parts.netloc or metrics_url


@dataclass(frozen=True, slots=True)
class LatencyRow:
    kind: str
    count: float
    mean: float | None
    p95: float | None


@dataclass(frozen=True, slots=True)
class Dashboard:
    """The figures the dashboard draws, over every reachable source."""

    sources: tuple[Source, ...]
    per_connector: tuple[tuple[str, float, float], ...]  # (name, received, sent)
    per_type: tuple[tuple[str, float, float], ...]  # (type, received, sent)
    rejects: tuple[tuple[str, float], ...]  # (code, count), largest first
    latency: tuple[LatencyRow, ...]

    @property
    def unreachable(self) -> tuple[Source, ...]:
        return tuple(s for s in self.sources if not s.reachable)


def summarise(sources: Sequence[Source]) -> Dashboard:
    """Add up the reachable sources' figures (unreachable ones are listed, not counted)."""
    per_connector: list[tuple[str, float, float]] = []
    received: dict[str, float] = {}
    sent: dict[str, float] = {}
    rejects: dict[str, float] = {}
    latency: dict[str, Latency] = {}
    for source in sources:
        traffic = source.traffic
        if traffic is None:
            continue
        per_connector.append(
            (source.name, sum(traffic.received.values()), sum(traffic.sent.values()))
        )
        for kind, value in traffic.received.items():
            received[kind] = received.get(kind, 0.0) + value
        for kind, value in traffic.sent.items():
            sent[kind] = sent.get(kind, 0.0) + value
        for code, value in traffic.rejected.items():
            rejects[code] = rejects.get(code, 0.0) + value
        for kind, hist in traffic.latency.items():
            latency[kind] = latency[kind].merged(hist) if kind in latency else hist
    return Dashboard(
        sources=tuple(sources),
        per_connector=tuple(per_connector),
        per_type=tuple(
            (kind, received.get(kind, 0.0), sent.get(kind, 0.0))
            for kind in sorted(set(received) | set(sent))
        ),
        rejects=tuple(sorted(rejects.items(), key=lambda item: (-item[1], item[0]))),
        latency=tuple(
            LatencyRow(kind, hist.count, hist.mean, hist.quantile(0.95))
            for kind, hist in sorted(latency.items())
            if hist.count
        ),
    )


# ---- the one I/O function ---------------------------------------------------------------


def scrape(
    urls: Iterable[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    transport: httpx.BaseTransport | None = None,
) -> list[Source]:
    """Fetch each ``/metrics`` URL (and its ``/health`` for a name). Never raises for a
    source: one that fails is returned with its ``error``."""
    found: list[Source] = []
    with httpx.Client(timeout=timeout, transport=transport) as client:
        for url in urls:
            health: object = None
            try:
                answer = client.get(url)
                answer.raise_for_status()
                traffic = parse_metrics(answer.text)
            except httpx.HTTPError as exc:
                found.append(Source(url, source_name(url), error=str(exc) or type(exc).__name__))
                continue
            except MetricsError as exc:
                found.append(Source(url, source_name(url), error=str(exc)))
                continue
            try:
                health = client.get(health_url(url)).json()
            except (httpx.HTTPError, ValueError):
                health = None  # a name is a nicety: the figures stand without it
            found.append(Source(url, source_name(url, health), traffic=traffic))
    return found


__all__ = [
    "ConnectorTraffic",
    "Dashboard",
    "Latency",
    "LatencyRow",
    "MetricsError",
    "Source",
    "health_url",
    "parse_metrics",
    "scrape",
    "source_name",
    "summarise",
]
