"""The dashboard's pure parts: parsing connectors' metrics, adding them up, bar geometry,
the language rule and the flash codec."""

from __future__ import annotations

import itertools
import math
import re
from importlib import resources

import httpx
import pytest

from connectors._metrics import Metrics
from governance import (
    FREQUENCIES,
    GovernanceError,
    Level,
    Resolution,
    Role,
    State,
)
from governance import LANGUAGES as DATASET_LANGUAGES
from governance.pii import HINTS, PiiError
from opendata import OpenDataError
from tabadul._traffic import (
    ConnectorTraffic,
    Latency,
    MetricsError,
    Source,
    health_url,
    parse_metrics,
    scrape,
    source_name,
    summarise,
)
from tabadul.console._charts import bar_chart, nice_ceiling, scale
from tabadul.console._i18n import choose_language, load_catalogues
from tabadul.console._web import Flash, FlashCodec, safe_next, same_origin


def _metrics() -> Metrics:
    metrics = Metrics()
    for _ in range(5):
        metrics.count("received", "civil.person-lookup.request")
    metrics.count("received", "customs.declaration-lodged")
    metrics.count("sent", "civil.person-lookup.response")
    metrics.count("rejected", "stale")
    metrics.count("rejected", "stale")
    metrics.count("rejected", "forbidden")
    for seconds in (0.0004, 0.003, 0.003, 0.02):
        metrics.handler_seconds.labels("civil.person-lookup.request").observe(seconds)
    metrics.log_size.set(42)
    metrics.directory_serial.set(7)
    return metrics


def test_parse_reads_a_real_connector_exposition():
    """Counters by type and code, gauges and the histogram, from connectors' own Metrics."""
    traffic = parse_metrics(_metrics().exposition().decode())
    assert traffic.received == {"civil.person-lookup.request": 5, "customs.declaration-lodged": 1}
    assert traffic.sent == {"civil.person-lookup.response": 1}
    assert traffic.rejected == {"stale": 2, "forbidden": 1}
    assert (traffic.log_records, traffic.directory_serial) == (42, 7)
    hist = traffic.latency["civil.person-lookup.request"]
    assert hist.count == 4
    assert hist.total == pytest.approx(0.0264)
    assert hist.mean == pytest.approx(0.0066)
    assert hist.buckets[-1] == (math.inf, 4)


def test_parse_ignores_other_families_and_an_empty_page():
    assert parse_metrics("") == ConnectorTraffic()
    text = "# TYPE other_total counter\nother_total 3\n"
    assert parse_metrics(text) == ConnectorTraffic()


def test_parse_refuses_what_is_not_an_exposition():
    with pytest.raises(MetricsError):
        parse_metrics("<html>not metrics</html>")


def test_quantiles_interpolate_within_a_bucket_like_prometheus():
    hist = Latency(10, 1.0, ((0.1, 5), (0.2, 10), (math.inf, 10)))
    assert hist.quantile(0.5) == pytest.approx(0.1)
    assert hist.quantile(0.75) == pytest.approx(0.15)
    assert hist.quantile(1.0) == pytest.approx(0.2)
    tail = Latency(4, 10.0, ((1.0, 2), (math.inf, 4)))
    assert tail.quantile(0.95) == 1.0  # in +Inf: the largest finite bound
    assert Latency(0, 0, ()).quantile(0.5) is None
    assert Latency(0, 0, ()).mean is None
    with pytest.raises(ValueError):
        hist.quantile(1.5)


def test_histograms_of_two_connectors_add_up():
    a = Latency(2, 0.3, ((0.1, 1), (0.5, 2), (math.inf, 2)))
    b = Latency(3, 0.2, ((0.1, 3), (0.5, 3), (math.inf, 3)))
    both = a.merged(b)
    assert (both.count, both.total) == (5, pytest.approx(0.5))
    assert both.buckets == ((0.1, 4), (0.5, 5), (math.inf, 5))


def test_summarise_adds_reachable_sources_and_lists_the_others():
    one = parse_metrics(_metrics().exposition().decode())
    two = ConnectorTraffic(received={"customs.declaration-lodged": 4}, rejected={"forbidden": 5})
    board = summarise(
        [
            Source("http://a/metrics", "MA/GOV/MOI/CIVIL", traffic=one),
            Source("http://b/metrics", "MA/GOV/MEF/TAX", traffic=two),
            Source("http://c/metrics", "c", error="connection refused"),
        ]
    )
    assert board.per_connector == (("MA/GOV/MOI/CIVIL", 6, 1), ("MA/GOV/MEF/TAX", 4, 0))
    assert {k: (r, s) for k, r, s in board.per_type} == {
        "civil.person-lookup.request": (5, 0),
        "civil.person-lookup.response": (0, 1),
        "customs.declaration-lodged": (5, 0),
    }
    assert board.rejects == (("forbidden", 6), ("stale", 2))
    assert [s.url for s in board.unreachable] == ["http://c/metrics"]
    (row,) = board.latency
    assert row.kind == "civil.person-lookup.request"
    assert row.count == 4
    assert row.p95 is not None
    assert 0.01 < row.p95 <= 0.025


def test_sources_are_named_by_their_subsystem():
    assert health_url("http://127.0.0.1:8082/metrics") == "http://127.0.0.1:8082/health"
    assert health_url("http://h:1/x/metrics/") == "http://h:1/x/health"
    assert source_name("http://h:1/metrics", {"subsystem": "MA/GOV/MEF/TAX"}) == "MA/GOV/MEF/TAX"
    assert source_name("http://h:1/metrics", None) == "h:1"
    assert source_name("http://h:1/metrics", ["odd"]) == "h:1"


def test_scrape_keeps_what_fails_with_why():
    """One good source, one answering 500, one not a metrics page, one refusing connections."""
    good = _metrics().exposition().decode()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "good":
            if request.url.path == "/health":
                return httpx.Response(200, json={"subsystem": "MA/GOV/MOI/CIVIL"})
            return httpx.Response(200, text=good)
        if request.url.host == "broken":
            return httpx.Response(500, text="boom")
        return httpx.Response(200, text="<html>hello</html>")

    found = scrape(
        ["http://good/metrics", "http://broken/metrics", "http://html/metrics"],
        transport=httpx.MockTransport(handler),
    )
    assert [(s.name, s.reachable) for s in found] == [
        ("MA/GOV/MOI/CIVIL", True),
        ("broken", False),
        ("html", False),
    ]
    assert "500" in (found[1].error or "")
    (refused,) = scrape(["http://127.0.0.1:9/metrics"], timeout=2)
    assert not refused.reachable
    assert refused.error


# ---- charts ---------------------------------------------------------------------------------


def test_nice_ceiling():
    assert [nice_ceiling(v) for v in (0, 0.7, 1, 3, 7, 12, 240, 2600)] == [
        1,
        1,
        1,
        5,
        10,
        20,
        250,
        5000,
    ]


@pytest.mark.parametrize(
    ("largest", "integral", "expected"),
    [
        (0, True, (1, 1)),
        (3, True, (3, 3)),
        (7, True, (10, 5)),
        (12, True, (20, 4)),
        (0.7, False, (1, 5)),
        (2.2, False, (2.5, 5)),
        (37, False, (50, 5)),
    ],
)
def test_axis_scale_has_round_steps(largest, integral, expected):
    assert scale(largest, integral=integral) == expected


def test_bars_are_proportional_on_one_scale():
    chart = bar_chart([("a", (10, 5)), ("b", (20, 0))], ("received", "sent"))
    widths = {(b.label, b.series): b.width for b in chart.bars}
    assert widths[("b", "received")] == chart.plot_width  # 20 is the nice top
    assert widths[("a", "received")] == pytest.approx(chart.plot_width / 2)
    assert widths[("a", "sent")] == pytest.approx(chart.plot_width / 4)
    assert widths[("b", "sent")] == 0
    assert [t.text for t in chart.ticks] == ["0", "5", "10", "15", "20"]
    assert len(chart.labels) == 2
    assert chart.height > chart.axis_y
    # bars of a row sit one under the other, rows do not overlap
    ys = sorted(b.y for b in chart.bars)
    assert all(later - earlier >= 14 for earlier, later in itertools.pairwise(ys))


def test_long_labels_are_shortened_but_kept_whole_in_the_title():
    name = "tax.compliance-certificate.request.v2.with.a.long.name"
    chart = bar_chart([(name, (1,))], ("rejected",))
    (label,) = chart.labels
    assert label.full == name
    assert len(label.text) <= 30
    assert label.text.endswith("…")


def test_a_chart_without_rows_is_empty_and_bad_rows_are_refused():
    assert bar_chart([], ("received",)).empty
    with pytest.raises(ValueError):
        bar_chart([("a", (1, 2))], ("received",))
    with pytest.raises(ValueError):
        bar_chart([("a", (-1,))], ("received",))


# ---- languages, flash, origin -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "cookie", "header", "expected"),
    [
        ("ar", "en", "fr", ("ar", True)),
        (None, "en", "ar", ("en", False)),
        ("xx", None, "de-DE,en;q=0.8,ar;q=0.9", ("ar", False)),
        (None, "zz", "en-US", ("en", False)),
        (None, None, "de, it;q=0.5", ("fr", False)),
        (None, None, None, ("fr", False)),
        (None, None, "ar;q=0, en;q=0.1", ("en", False)),
        (None, None, "en;q=bogus, ar", ("ar", False)),
    ],
)
def test_language_choice(query, cookie, header, expected):
    assert choose_language(query, cookie, header) == expected


def test_catalogues_name_every_state_level_role_code_and_category():
    """Every value the pages translate by name has its text, so no page shows a raw key."""
    catalogue = load_catalogues()["fr"]
    wanted = (
        [f"state.{s.value}" for s in State]
        + [f"level.{v.value}" for v in Level]
        + [f"role.{r.value}" for r in Role]
        + [f"resolution.{r.value}" for r in Resolution]
        + [f"frequency.{f}" for f in FREQUENCIES]
        + [f"language.{code}" for code in DATASET_LANGUAGES]
        + [f"category.{hint.category}" for hint in HINTS]
        + [f"error.{cls.code}" for cls in _subclasses(GovernanceError)]
        + [f"error.{cls.code}" for cls in _subclasses(OpenDataError)]
        + [f"error.{cls.code}" for cls in _subclasses(PiiError)]
    )
    assert sorted(k for k in wanted if k not in catalogue) == []


def _subclasses(root: type) -> list[type]:
    found = [root]
    for sub in root.__subclasses__():
        found += _subclasses(sub)
    return found


def test_templates_use_only_keys_the_catalogues_have():
    """Every literal t('key') in the templates exists in the catalogues."""
    catalogue = load_catalogues()["en"]
    folder = resources.files("tabadul.console") / "templates"
    used = set()
    for item in folder.iterdir():
        used |= set(re.findall(r"\bt\('([a-z0-9_.-]+)'\s*[),]", item.read_text("utf-8")))
    assert used
    assert sorted(used - set(catalogue)) == []


def test_flash_round_trip_and_forgery():
    codec = FlashCodec(b"k" * 32)
    flash = Flash(
        "error", code="four-eyes", message="m" * 2000, details=[str(i) for i in range(20)]
    )
    back = codec.loads(codec.dumps(flash))
    assert back is not None
    assert (back.kind, back.code, len(back.message), len(back.details)) == (
        "error",
        "four-eyes",
        600,
        8,
    )
    value = codec.dumps(flash)
    assert FlashCodec(b"x" * 32).loads(value) is None
    assert codec.loads(value[:-1] + ("0" if value[-1] != "0" else "1")) is None
    assert codec.loads("garbage") is None
    assert codec.loads(None) is None


def test_a_long_flash_still_fits_in_a_cookie():
    """Non-ASCII text grows in UTF-8 and base64: details, then the message, are cut."""
    codec = FlashCodec()
    flash = Flash("error", code="invalid-data", message="é" * 600, details=["ب" * 200] * 8)
    value = codec.dumps(flash)
    assert len(value) < 4000
    back = codec.loads(value)
    assert back is not None
    assert back.message.startswith("é")


def test_same_origin_and_safe_next():
    assert same_origin({"host": "c:8000"})
    assert same_origin(
        {"host": "c:8000", "origin": "http://c:8000", "sec-fetch-site": "same-origin"}
    )
    assert not same_origin({"host": "c:8000", "origin": "http://evil"})
    assert not same_origin({"host": "c:8000", "origin": "null"})
    assert not same_origin({"host": "c:8000", "sec-fetch-site": "same-site"})
    assert safe_next("/console/datasets/x", "/console") == "/console/datasets/x"
    assert safe_next("//evil.example/console/", "/console") is None
    assert safe_next("/console//evil", "/console") is None
    assert safe_next("https://evil/console/x", "/console") is None
