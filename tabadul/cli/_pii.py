"""``tabadul pii``: screen a CSV file for personal data before it goes to review.

The file is read with the delimiter given (a comma unless told: never guessed) and within the
bounds of ``TABADUL_CSV_*`` (see ``tabadul._services``). Exit codes: 0 no finding, 1 findings
(each blocks approval until resolved), 2 anything else (unreadable file, not UTF-8, bad CSV,
over a bound), always with a coded message and never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from governance import Dialect, TableLimits
from governance.pii import PiiReport, scan_csv
from tabadul._services import table_limits_from_env
from tabadul.cli._common import byte_progress
from tabadul.cli._output import console, err_console, print_json, reporting

pii_app = typer.Typer(help="PII screening of tabular data.", no_args_is_help=True)

PROGRESS_FROM_BYTES = 8 * 1024 * 1024  # smaller files scan in well under a second


@pii_app.command("scan")
def scan_command(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="CSV file (UTF-8, header row).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    max_positions: Annotated[
        int, typer.Option("--max-positions", min=0, help="Row numbers kept per finding.")
    ] = 5,
    country: Annotated[
        str, typer.Option("--country", help="Region of national phone numbers.")
    ] = "MA",
    delimiter: Annotated[
        str, typer.Option("--delimiter", help="The file's delimiter: , ; | or tab.")
    ] = ",",
) -> None:
    """Scan FILE's column names and values for personal data; print findings, never values."""
    with reporting(as_json=as_json):
        dialect = Dialect("\t" if delimiter.lower() == "tab" else delimiter)
        report = _scan(
            file,
            as_json=as_json,
            max_positions=max_positions,
            country=country,
            dialect=dialect,
            limits=table_limits_from_env(),
        )
    if as_json:
        print_json({**report.as_dict(), "file": str(file)})
    else:
        _print_report(report, file)
    if report.has_findings:
        raise typer.Exit(1)


def _scan(
    file: Path,
    *,
    as_json: bool,
    max_positions: int,
    country: str,
    dialect: Dialect,
    limits: TableLimits,
) -> PiiReport:
    try:
        size = file.stat().st_size
    except OSError:
        size = 0  # scan_csv reports why the file cannot be read
    shown = not as_json and err_console.is_terminal and size >= PROGRESS_FROM_BYTES
    with byte_progress(f"scanning {file.name}", enabled=shown) as progress:
        return scan_csv(
            file,
            max_positions=max_positions,
            country=country,
            dialect=dialect,
            limits=limits,
            name=str(file),
            progress=progress,
        )


def _print_report(report: PiiReport, file: Path) -> None:
    summary = f"{report.rows_scanned:,} rows, {len(report.columns)} columns"
    if not report.has_findings:
        console.print(f"[green]no PII found[/]: {escape(str(file))} ({summary})", highlight=False)
        return
    findings = report.findings
    table = Table(title=f"{escape(str(file))}: {len(findings)} finding(s), {summary}")
    table.add_column("column")
    table.add_column("detector", no_wrap=True)
    table.add_column("share", justify="right")
    table.add_column("count", justify="right")
    table.add_column("rows")
    table.add_column("severity")
    for f in findings:
        more = "…" if f.matches > len(f.rows) else ""
        table.add_row(
            escape(f.column),
            f.detector,
            f"{f.share:.1%}" if f.source == "values" else "header",
            f"{f.matches:,}",
            ", ".join(map(str, f.rows)) + more,
            f.severity.value,
        )
    console.print(table)
    console.print(
        "[red]blocked[/]: every finding must be resolved before approval", highlight=False
    )
    sys.stdout.flush()
