"""Smoke runs of the benchmarks at tiny sizes: they run and report every figure (no timing
is asserted; figures live in docs/benchmarks.md)."""

import json

from typer.testing import CliRunner

from bench.core import run
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
    for key in ("raw_msgs_per_s", "bus_msgs_per_s", "ratio", "rpc_p50_ms", "rpc_p99_ms"):
        assert report[key] > 0
    assert report["messages"] == 40


def test_tabadul_bench_pii_json():
    """`tabadul bench pii --json` scans a small generated file beside the csv module."""
    result = CliRunner().invoke(build_app(), ["bench", "pii", "--rows", "2000", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["results"]
    assert all(r["product_per_s"] > 0 and r["raw_per_s"] > 0 for r in report["results"])
