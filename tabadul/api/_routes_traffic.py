"""Exchange traffic, for operators and auditors: what the connectors' Prometheus ``/metrics``
pages (``settings.metrics_urls``) count, per source and in all.

The scraping and the arithmetic are :mod:`tabadul._traffic`'s, shared with the console
dashboard; this module shapes them as JSON. A source that cannot be read is listed with why
(``reachable: false``), never a failure of the call.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from tabadul._access import OVERSIGHT, require_role
from tabadul._traffic import Latency, Source, scrape, summarise
from tabadul.api._auth import Caller, ServicesDep
from tabadul.api._problems import problem_responses

router = APIRouter(tags=["traffic"], responses=problem_responses(401, 403, 429, 503))


class MessageCounts(BaseModel):
    received: int
    sent: int


class LatencyOut(BaseModel):
    """Handler latency: observations, mean and 95th percentile (from the histogram's
    buckets, as Prometheus's histogram_quantile estimates it)."""

    count: int
    mean_seconds: float | None
    p95_seconds: float | None

    @classmethod
    def of(cls, latency: Latency) -> LatencyOut:
        return cls(
            count=int(latency.count), mean_seconds=latency.mean, p95_seconds=latency.quantile(0.95)
        )


class SourceOut(BaseModel):
    url: str
    name: str = Field(description="The subsystem its /health names, else host:port")
    reachable: bool
    error: str | None = Field(description="Why it could not be read")
    messages: dict[str, MessageCounts] = Field(description="By message type")
    rejected: dict[str, int] = Field(description="By reject code")
    latency: dict[str, LatencyOut] = Field(description="By message type")
    log_records: int | None
    directory_serial: int | None

    @classmethod
    def of(cls, source: Source) -> SourceOut:
        traffic = source.traffic
        if traffic is None:
            return cls(
                url=source.url,
                name=source.name,
                reachable=False,
                error=source.error,
                messages={},
                rejected={},
                latency={},
                log_records=None,
                directory_serial=None,
            )
        kinds = sorted(set(traffic.received) | set(traffic.sent))
        return cls(
            url=source.url,
            name=source.name,
            reachable=True,
            error=None,
            messages={
                kind: MessageCounts(
                    received=int(traffic.received.get(kind, 0)), sent=int(traffic.sent.get(kind, 0))
                )
                for kind in kinds
            },
            rejected={code: int(n) for code, n in traffic.rejected.items()},
            latency={kind: LatencyOut.of(h) for kind, h in traffic.latency.items() if h.count},
            log_records=_whole(traffic.log_records),
            directory_serial=_whole(traffic.directory_serial),
        )


class TrafficOut(BaseModel):
    sources: list[SourceOut]
    messages: dict[str, dict[str, MessageCounts]] = Field(
        description="By agency (a source's name), then message type; reachable sources only"
    )
    rejected: dict[str, int] = Field(description="By reject code, over all sources")
    latency: dict[str, LatencyOut] = Field(description="By message type, over all sources")


def _whole(value: float | None) -> int | None:
    return None if value is None else int(value)


def _by_agency(sources: list[SourceOut]) -> dict[str, dict[str, MessageCounts]]:
    """Message counts by source name, then type (replicas of one subsystem added up)."""
    found: dict[str, dict[str, MessageCounts]] = {}
    for source in sources:
        if not source.reachable:
            continue
        agency = found.setdefault(source.name, {})
        for kind, counts in source.messages.items():
            before = agency.get(kind, MessageCounts(received=0, sent=0))
            agency[kind] = MessageCounts(
                received=before.received + counts.received, sent=before.sent + counts.sent
            )
    return found


@router.get("/traffic", summary="Messages, rejects and latency from the connectors' metrics")
def traffic(services: ServicesDep, caller: Caller) -> TrafficOut:
    require_role(caller, OVERSIGHT, "read_traffic", "read the traffic figures")
    sources = scrape(services.settings.metrics_urls)
    shaped = [SourceOut.of(source) for source in sources]
    dashboard = summarise(sources)
    return TrafficOut(
        sources=shaped,
        messages=_by_agency(shaped),
        rejected={code: int(n) for code, n in dashboard.rejects},
        latency={
            row.kind: LatencyOut(count=int(row.count), mean_seconds=row.mean, p95_seconds=row.p95)
            for row in dashboard.latency
        },
    )


__all__ = ["router"]
