"""GET /traffic over real HTTP sources: two connectors' metrics (the connectors' own
Prometheus registry, served with their /health), one that serves garbage and one that does
not listen; the unreadable ones are reported per source, the figures add up."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from connectors._metrics import Metrics
from tests.api.conftest import is_problem
from tests.support.metrics import MetricsSource

TAX = "MA/GOV/MEF/TAX"
CIVIL = "MA/GOV/MOI/CIVIL-REGISTRY"
LOOKUP = "civil.person-lookup.request"
LODGED = "customs.declaration-lodged"


def _exposition(
    received: dict[str, int], sent: dict[str, int], rejected: dict[str, int]
) -> Callable[[], bytes]:
    """A connector's exposition having counted these messages."""
    metrics = Metrics()
    for family, counts in (("received", received), ("sent", sent), ("rejected", rejected)):
        for label, count in counts.items():
            for _ in range(count):
                metrics.count(family, label)
    for seconds in (0.002, 0.004, 0.2):
        metrics.handler_seconds.labels(LOOKUP).observe(seconds)
    metrics.log_size.set(42)
    metrics.directory_serial.set(7)
    return metrics.exposition


@pytest.fixture
def sources() -> Iterator[list[MetricsSource]]:
    tax = MetricsSource(
        _exposition({LODGED: 3}, {LOOKUP: 5}, {"forbidden": 1}), {"status": "ok", "subsystem": TAX}
    )
    civil = MetricsSource(
        _exposition({LOOKUP: 5}, {}, {"stale": 2, "forbidden": 1}),
        {"status": "degraded", "subsystem": CIVIL},
    )
    garbage = MetricsSource(lambda: b"this is { not prometheus\n")
    found = [tax, civil, garbage]
    yield found
    for source in found:
        source.close()


def _closed_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/metrics"


def test_traffic_per_agency_type_and_code(make_api, sources):
    closed = _closed_url()
    api = make_api(metrics_urls=(*(s.url for s in sources), closed))
    answer = api("audrey").get("/traffic")
    assert answer.status_code == 200, answer.text
    traffic = answer.json()

    by_url = {s["url"]: s for s in traffic["sources"]}
    assert [s["url"] for s in traffic["sources"]] == [*(s.url for s in sources), closed]
    tax = by_url[sources[0].url]
    assert (tax["name"], tax["reachable"], tax["log_records"], tax["directory_serial"]) == (
        TAX,
        True,
        42,
        7,
    )
    assert tax["messages"] == {
        LODGED: {"received": 3, "sent": 0},
        LOOKUP: {"received": 0, "sent": 5},
    }
    assert tax["latency"][LOOKUP]["count"] == 3
    assert tax["latency"][LOOKUP]["mean_seconds"] == pytest.approx(0.206 / 3)
    for bad in (sources[2].url, closed):
        assert by_url[bad]["reachable"] is False
        assert by_url[bad]["error"]
        assert by_url[bad]["messages"] == {}

    assert traffic["messages"] == {
        TAX: {LODGED: {"received": 3, "sent": 0}, LOOKUP: {"received": 0, "sent": 5}},
        CIVIL: {LOOKUP: {"received": 5, "sent": 0}},
    }
    assert traffic["rejected"] == {"forbidden": 2, "stale": 2}
    latency = traffic["latency"][LOOKUP]
    assert latency["count"] == 6
    assert 0.1 < latency["p95_seconds"] <= 0.25  # the 95th percentile is in the 0.1-0.25 bucket


def test_no_sources_no_figures(api):
    assert api("root").get("/traffic").json() == {
        "sources": [],
        "messages": {},
        "rejected": {},
        "latency": {},
    }


@pytest.mark.parametrize("user", ["amina", "karim"])
def test_traffic_is_for_operators_and_auditors(api, user):
    is_problem(api(user).get("/traffic"), 403, "wrong-role")
