"""``tabadul demo``: the end-to-end scenario, with progress and a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from connectors import ConnectorError
from tabadul.cli._output import console, err_console, fail, print_json, reporting


def demo(
    folder: Annotated[Path, typer.Option(help="Where the demo writes its files.")] = Path(
        "var/demo"
    ),
    requests: Annotated[int, typer.Option(min=1, help="Certificate requests to run.")] = 12,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Run the end-to-end scenario: five ministry connectors on the local RabbitMQ."""
    from tabadul.demo import run

    with reporting(as_json=as_json), err_console.status("starting") as status:

        def step(text: str) -> None:
            status.update(text)
            if not as_json:
                err_console.print(f"[green]✓[/] {text}", highlight=False)

        try:
            summary = run(folder, requests=requests, progress=step)
        except ConnectorError as exc:
            fail(exc, as_json=as_json)
    if as_json:
        print_json(summary)
        return
    table = Table("", "", title="Tabadul demo", show_header=False)
    table.add_row("messages sent (confirmed)", str(summary["messages_sent"]))
    table.add_row("messages accepted by receivers", str(summary["accepted"]))
    rejects = ", ".join(f"{code}: {n}" for code, n in summary["rejects_by_code"].items())
    table.add_row("refused, by code", rejects)
    table.add_row("alerts received by tax", str(summary["alerts_received_by_tax"]))
    table.add_row(
        "request round trip", f"p50 {summary['rpc_ms_p50']} ms, max {summary['rpc_ms_max']} ms"
    )
    for name, log in summary["logs"].items():
        table.add_row(f"log of {name}", f"{log['records']} records, intact, root {log['root']}…")
    evidence = summary["evidence"]
    table.add_row(
        "evidence for an alert",
        f"record {evidence['position']} of {evidence['tree_size']} in {evidence['log_id']}, "
        f"sender signature {evidence['sender_signature']}",
    )
    table.add_row("files", f"{summary['folder']}/ ({len(summary['files'])} files)")
    console.print(table)
    console.print(
        f"Try: tabadul evidence verify {folder}/evidence-alert.json --ca {folder}/ca.pem",
        highlight=False,
    )
    console.print(f"Not in this demo yet: {summary['not_in_this_demo']}.", highlight=False)
