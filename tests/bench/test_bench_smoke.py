"""Smoke runs of the benchmarks at tiny sizes: they run and report every figure (no timing
is asserted; figures live in docs/benchmarks.md)."""

import json

from typer.testing import CliRunner

from bench.core import run
from risk import SAMPLE
from tabadul.cli import build_app

EXPECTED = {"sign", "verify", "seal", "schema", "log append", "log verify"}


def test_core_benchmark_reports_each_figure_beside_its_baseline():
    """Every figure has a product rate, a raw rate and their ratio."""
    report = run(scale=0.001)
    names = [r["name"] for r in report["results"]]
    assert {n for n in EXPECTED if any(name.startswith(n) for name in names)} == EXPECTED
    for result in report["results"]:
        assert result["product_per_s"] > 0
        assert result["raw_per_s"] > 0
        assert abs(result["ratio"] - result["product_per_s"] / result["raw_per_s"]) < 0.01
    assert report["machine"]["cpu_count"] >= 1


def test_tabadul_bench_core_json():
    """`tabadul bench core --json` prints the same report as JSON."""
    result = CliRunner().invoke(build_app(), ["bench", "core", "--scale", "0.001", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["benchmark"] == "core"


def test_tabadul_bench_bus_json_on_rabbitmq():
    """`tabadul bench bus --json` moves a few events through real connectors and RabbitMQ
    and reports every figure of the issue (no time is asserted)."""
    result = CliRunner().invoke(
        build_app(), ["bench", "bus", "--messages", "40", "--requests", "5", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for key in (
        "raw_msgs_per_s",
        "bus_msgs_per_s",
        "ratio",
        "rpc_p50_ms",
        "rpc_p99_ms",
        "raw_rpc_p50_ms",
        "raw_rpc_p99_ms",
        "sender_cpu_us_per_msg",
        "receiver_cpu_us_per_msg",
    ):
        assert report[key] > 0
    assert report["messages"] == 40


def test_tabadul_bench_pii_json():
    """`tabadul bench pii --json` scans a small generated file beside the csv module."""
    result = CliRunner().invoke(build_app(), ["bench", "pii", "--rows", "2000", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["results"]
    assert all(r["product_per_s"] > 0 and r["raw_per_s"] > 0 for r in report["results"])


def test_tabadul_bench_faults_json_names_each_outcome():
    """`tabadul bench faults --json` runs one fault at a tiny size and reports every outcome;
    an unknown fault is refused with its code."""
    app = build_app()
    args = ["bench", "faults", "--fault", "none", "--messages", "50", "--rate", "25", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.stdout)["results"]
    assert report["sent"] == {"events": 40, "requests": 10}
    assert (report["lost"], report["duplicated"], report["handler_reruns"]) == (0, 0, 0)
    refused = CliRunner().invoke(app, ["bench", "faults", "--fault", "meteor", "--json"])
    assert refused.exit_code == 2
    assert json.loads(refused.stdout)["error"]["code"] == "unknown-fault"


def test_tabadul_bench_soak_json_samples_memory_and_queues():
    """`tabadul bench soak --json` for a few seconds: samples of every connector's memory and
    queue depth, and the final accounting."""
    args = ["bench", "soak", "--minutes", "0.1", "--sample", "2", "--rate", "50", "--json"]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report["samples"]) >= 3
    assert set(report["samples"][-1]["rss_mb"]) == {"civil", "tax", "treasury", "senders"}
    assert all(v > 0 for v in report["samples"][-1]["rss_mb"].values())
    assert report["sent"]["events"] > 0
    assert (report["lost"], report["duplicated"]) == (0, 0)


def test_tabadul_bench_risk_json_on_the_sample(tmp_path):
    """`tabadul bench risk --json` on the shipped sample cut in two by time: quality on the
    later file, each ablation, the learners and the speeds, all measured."""
    lines = SAMPLE.read_text("utf-8").splitlines()
    date = lines[0].split(",").index("Date")
    (tmp_path / "train.csv").write_text(
        "\n".join([lines[0], *(r for r in lines[1:] if r.split(",")[date] < "2021")]) + "\n"
    )
    (tmp_path / "valid.csv").write_text(
        "\n".join([lines[0], *(r for r in lines[1:] if r.split(",")[date] >= "2021")]) + "\n"
    )
    result = CliRunner().invoke(build_app(), ["bench", "risk", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert 0.5 < report["quality_on_later_period"]["auc"] <= 1
    assert set(report["ablation"]) == {
        "all groups",
        "without code",
        "without amount",
        "without price deviation",
        "without history",
    }
    assert report["learners"][0]["learner"] == "LightGBM (used)"
    assert report["speed"]["batch_with_reasons_per_s"] > 0
    assert report["speed"]["single_p50_ms"] > 0
    missing = CliRunner().invoke(build_app(), ["bench", "risk", str(tmp_path / "none")])
    assert missing.exit_code == 2
    assert "error [bad-table]" in missing.output
