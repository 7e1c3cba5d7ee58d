"""``tabadul bench``: the benchmarks of bench/, with progress and a table or JSON."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from tabadul.cli._output import console, err_console, print_json, reporting, usage_error

bench_app = typer.Typer(help="Benchmarks (each beside its raw baseline).", no_args_is_help=True)


@contextmanager
def _progress(title: str) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr; the yielded function names the current step."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task(title, total=None)
        yield lambda step: progress.update(task, description=f"{title}: {step}")


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table, for docs/benchmarks.md."""
    lines = [
        "| benchmark | Tabadul /s | raw /s | ratio | raw baseline | goal | met |",
        "|---|---:|---:|---:|---|---|---|",
    ]
    for r in report["results"]:
        met = "" if r["met"] is None else ("yes" if r["met"] else "**no**")
        lines.append(
            f"| {r['name']} | {r['product_per_s']:,} | {r['raw_per_s']:,} | {r['ratio']} | "
            f"{r['raw_is']} | {r['goal'] or ''} | {met} |"
        )
    return "\n".join(lines)


@bench_app.command("core")
def core(
    scale: Annotated[float, typer.Option(help="Iteration count multiplier.")] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    as_markdown: Annotated[
        bool, typer.Option("--markdown", help="Print a Markdown table.")
    ] = False,
    postgres: Annotated[
        str, typer.Option(help="PostgreSQL URL for the log figure ('' to skip).")
    ] = "postgresql://postgres@127.0.0.1:5432/test",
) -> None:
    """Sign, verify, seal/open, validate, log append and log verify per second."""
    from bench.core import run

    with _progress("core benchmark") as say:
        try:
            report = run(scale, say, postgres_url=postgres or None)
        except psycopg.OperationalError as exc:
            usage_error(
                "postgres-unreachable",
                f"cannot reach PostgreSQL for the log figure ({exc}); pass --postgres '' to "
                "skip it",
                as_json=as_json,
            )
    if as_json:
        print_json(report)
        return
    if as_markdown:
        console.print(markdown(report), markup=False, highlight=False, soft_wrap=True)
        return
    table = Table("benchmark", "Tabadul /s", "raw /s", "ratio", "goal", "met")
    for r in report["results"]:
        met = "" if r["met"] is None else ("[green]yes[/]" if r["met"] else "[red]no[/]")
        table.add_row(
            r["name"],
            f"{r['product_per_s']:,}",
            f"{r['raw_per_s']:,}",
            str(r["ratio"]),
            r["goal"] or "",
            met,
        )
    console.print(table)


@bench_app.command("bus")
def bus(
    messages: Annotated[int, typer.Option(min=1, help="Events to move end to end.")] = 20_000,
    requests: Annotated[int, typer.Option(min=1, help="Requests for the RPC latency.")] = 300,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Tabadul end to end on RabbitMQ (connectors in their own processes) beside raw pika."""
    from bench.bus import run as run_bus
    from connectors import ConnectorError

    with _progress("bus benchmark") as say:
        try:
            report = run_bus(messages, requests, say)
        except (ConnectorError, OSError, TimeoutError) as exc:
            usage_error("bench-failed", f"the bus benchmark could not run: {exc}", as_json=as_json)
    if as_json:
        print_json(report)
        return
    table = Table("figure", "value", "goal")
    goals = report["goals"]
    for key in (
        "raw_msgs_per_s",
        "bus_msgs_per_s",
        "ratio",
        "rpc_p50_ms",
        "raw_rpc_p50_ms",
        "rpc_p99_ms",
        "raw_rpc_p99_ms",
    ):
        table.add_row(key, str(report[key]), goals.get(key, ""))
    console.print(table)


@bench_app.command("pii")
def pii(
    rows: Annotated[int, typer.Option(min=1, help="Rows of the generated CSV.")] = 1_000_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """PII scan rows/s on a generated CSV beside a plain csv-module pass over the same file."""
    from bench.pii import run as run_pii

    with _progress("pii benchmark") as say:
        report = run_pii(rows, say)
    if as_json:
        print_json(report)
        return
    console.print(markdown(report), markup=False, highlight=False, soft_wrap=True)


@bench_app.command("risk")
def risk(
    data: Annotated[
        Path, typer.Argument(metavar="DATA_DIR", help="Folder with train.csv and valid.csv.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Risk model quality on the later file, the ablation, the learners, the speeds."""
    from bench.risk import run as run_risk
    from risk import RiskError

    with reporting(as_json=as_json, also=(RiskError,)), _progress("risk benchmark") as say:
        report = run_risk(data, say)
    if as_json:
        print_json(report)
        return
    console.print_json(json.dumps(report))


@bench_app.command("publish")
def publish(
    rows: Annotated[int, typer.Option(min=1, help="Rows of the generated CSV.")] = 200_000,
    repeats: Annotated[int, typer.Option(min=1, help="Publications per side.")] = 3,
    ckan_url: Annotated[
        str | None, typer.Option("--ckan-url", help="CKAN (default: $TABADUL_CKAN_URL).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Publishing to CKAN beside raw ckanapi, and validation beside plain Frictionless."""
    from bench.publish import run as run_publish
    from opendata import OpenDataError
    from tabadul._services import Settings

    settings = Settings.from_env()
    if not settings.ckan_token:
        usage_error(
            "no-ckan-token",
            "set TABADUL_CKAN_TOKEN or TABADUL_CKAN_TOKEN_FILE (a CKAN sysadmin API token)",
            as_json=as_json,
        )
    with _progress("publish benchmark") as say:
        try:
            report = run_publish(
                ckan_url or settings.ckan_url,
                settings.ckan_token,
                rows=rows,
                repeats=repeats,
                say=say,
            )
        except (OpenDataError, RuntimeError) as exc:
            usage_error(
                "bench-failed", f"the publish benchmark could not run: {exc}", as_json=as_json
            )
    if as_json:
        print_json(report)
        return
    table = Table("figure", "Tabadul", "raw", "ratio", "goal", "met")
    pub, val = report["publish"], report["validate"]
    table.add_row(
        "publish (s)", str(pub["tabadul_s"]), str(pub["raw_ckanapi_s"]), str(pub["ratio"]),
        pub["goal"], "yes" if pub["met"] else "no",
    )  # fmt: skip
    ours, plain = f"{val['tabadul_rows_per_s']:,}", f"{val['frictionless_rows_per_s']:,}"
    table.add_row(
        "validate (rows/s)", ours, plain, str(val["ratio"]), val["goal"],
        "yes" if val["met"] else "no",
    )  # fmt: skip
    console.print(table)


@bench_app.command("faults")
def faults(
    messages: Annotated[int, typer.Option(min=10, help="Messages per fault.")] = 10_000,
    fault: Annotated[
        list[str] | None, typer.Option(help="Only this fault (repeatable); default: all.")
    ] = None,
    rate: Annotated[float, typer.Option(min=1, help="Events per second.")] = 600.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Traffic across five connectors on RabbitMQ while each fault is injected: sent,
    delivered, rejected, lost, duplicated, recovery time."""
    from bench.faults import FAULTS
    from bench.faults import run as run_faults
    from connectors import ConnectorError

    unknown = sorted(set(fault or []) - set(FAULTS))
    if unknown:
        usage_error(
            "unknown-fault",
            f"no fault named {', '.join(unknown)}; choose from {', '.join(FAULTS)}",
            as_json=as_json,
        )
    with _progress("fault injection") as say:
        try:
            report = run_faults(messages, fault, rate=rate, progress=say)
        except (ConnectorError, OSError, TimeoutError, subprocess.CalledProcessError) as exc:
            usage_error("bench-failed", f"the fault runs could not run: {exc}", as_json=as_json)
    if as_json:
        print_json(report)
        return
    table = Table("fault", "sent", "delivered", "rejected", "lost", "duplicated", "recovery s")
    for r in report["results"]:
        rejected = ", ".join(f"{code}: {n}" for code, n in r["rejected"].items()) or "0"
        table.add_row(
            r["fault"], str(sum(r["sent"].values())), str(sum(r["delivered"].values())),
            rejected, str(r["lost"]), str(r["duplicated"]), str(r["recovery_s"]),
        )  # fmt: skip
    console.print(table)


@bench_app.command("cluster")
def cluster(
    messages: Annotated[int, typer.Option(min=10, help="Messages carried.")] = 10_000,
    rate: Annotated[float, typer.Option(min=1, help="Events per second.")] = 600.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A three-node RabbitMQ cluster on this machine; one node stopped during traffic."""
    from bench.cluster import ClusterError
    from bench.cluster import run as run_cluster
    from connectors import ConnectorError

    with _progress("three-node cluster") as say:
        try:
            report = run_cluster(messages, rate=rate, progress=say)
        except (ClusterError, ConnectorError, OSError, TimeoutError) as exc:
            usage_error("bench-failed", f"the cluster run could not run: {exc}", as_json=as_json)
    if as_json:
        print_json(report)
        return
    r = report["result"]
    table = Table("figure", "value")
    for key in ("sent", "delivered", "rejected", "lost", "duplicated", "longest_pause_s"):
        table.add_row(key, json.dumps(r[key]))
    console.print(table)


@bench_app.command("soak")
def soak(
    minutes: Annotated[float, typer.Option(min=0.05, help="How long.")] = 30.0,
    rate: Annotated[float, typer.Option(min=1, help="Events per second.")] = 200.0,
    sample: Annotated[float, typer.Option(min=1, help="Seconds between samples.")] = 30.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Steady traffic for a long time; memory and queue depth sampled, nothing lost."""
    from bench.soak import run as run_soak
    from connectors import ConnectorError

    with _progress("soak") as say:
        try:
            report = run_soak(minutes, rate=rate, sample_every=sample, progress=say)
        except (ConnectorError, OSError, TimeoutError) as exc:
            usage_error("bench-failed", f"the soak could not run: {exc}", as_json=as_json)
    if as_json:
        print_json(report)
        return
    table = Table("figure", "value")
    for key in ("sent", "handled", "lost", "duplicated", "rss_growth_mb", "max_queue_depth"):
        table.add_row(key, json.dumps(report[key]))
    console.print(table)
