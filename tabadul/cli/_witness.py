"""``tabadul witness``: the cosignatures a connector holds (its own, as a witness, and those
witnesses sent back for its logs), exported for offline verification; and the options by
which ``log verify`` and ``audit verify`` take witnesses' cosignatures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from exchange.log import Cosignature
from tabadul._witnessing import export_cosignatures, read_cosignatures
from tabadul.cli._output import console, print_json, reporting

witness_app = typer.Typer(
    help="Cosignatures of log heads, for verifying logs.", no_args_is_help=True
)

WitnessDbs = Annotated[
    list[str] | None,
    typer.Option(
        "--witness",
        help="A witness connector's database (SQLite file or postgresql:// URL) holding its "
        "cosignatures; repeat for each witness.",
    ),
]
CosignatureFiles = Annotated[
    list[Path] | None,
    typer.Option("--cosignatures", help="A file written by `tabadul witness export` (repeat)."),
]


def gathered(
    witnesses: list[str] | None, files: list[Path] | None, log_id: str | None, *, as_json: bool
) -> list[Cosignature]:
    """The cosignatures named on the command line (a coded error if one cannot be read)."""
    with reporting(as_json=as_json):
        return read_cosignatures(witnesses or (), files or (), log_id)
    raise AssertionError("unreachable: reporting exits")  # pragma: no cover - for mypy


@witness_app.command("export")
def export(
    db: Annotated[str, typer.Argument(help="The connector's database (SQLite or postgresql://).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the file.")],
    log: Annotated[
        str | None, typer.Option("--log", help="Only the cosignatures of this log.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Write the cosignatures a connector holds to a file anyone can verify logs with."""
    found = gathered([db], [], log, as_json=as_json)
    output.write_bytes(export_cosignatures(found))
    if as_json:
        print_json({"ok": True, "cosignatures": len(found), "output": str(output)})
        return
    logs = len({c.head.log_id for c in found})
    console.print(f"{len(found)} cosignatures of {logs} logs written to {output}", highlight=False)
