"""``tabadul demo``: the end-to-end scenario, with progress and a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from connectors import ConnectorError
from tabadul._services import Settings
from tabadul.cli._output import console, err_console, fail, print_json, reporting, usage_error

# where scripts/ckan-local leaves the local CKAN's sysadmin token
LOCAL_TOKEN = Path("var/ckan/token")


def _ckan_token(token_file: Path | None, *, as_json: bool) -> str:
    """The CKAN token: --ckan-token-file, else TABADUL_CKAN_TOKEN(_FILE), else the local one."""
    if token_file is None and (token := Settings.from_env().ckan_token):
        return token
    path = token_file or LOCAL_TOKEN
    try:
        return path.read_text("utf-8").strip()
    except OSError:
        usage_error(
            "no-ckan-token",
            f"no CKAN API token at {path}: start the local CKAN with scripts/ckan-local, or "
            "give --ckan-token-file (or set TABADUL_CKAN_TOKEN)",
            as_json=as_json,
        )


def demo(
    folder: Annotated[Path, typer.Option(help="Where the demo writes its files.")] = Path(
        "var/demo"
    ),
    requests: Annotated[int, typer.Option(min=1, help="Certificate requests to run.")] = 12,
    ckan_url: Annotated[
        str | None,
        typer.Option("--ckan-url", help="CKAN (default: $TABADUL_CKAN_URL, else the local one)."),
    ] = None,
    ckan_token_file: Annotated[
        Path | None,
        typer.Option("--ckan-token-file", help="A file holding a CKAN sysadmin API token."),
    ] = None,
    risk_data: Annotated[
        Path | None,
        typer.Option(
            "--risk-data",
            help="A folder with the customs data set's train.csv and valid.csv (default: "
            "$TABADUL_RISK_DATA, else ../shared/data/customs-declarations, else the sample "
            "shipped with risk/).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Run the end-to-end scenario: five ministry connectors on the local RabbitMQ, then two
    open datasets governed, published to the local CKAN and pulled back."""
    from risk import RiskError
    from tabadul.demo import run

    token = _ckan_token(ckan_token_file, as_json=as_json)
    url = ckan_url or Settings.from_env().ckan_url
    with (
        reporting(as_json=as_json, also=(RiskError,)),
        err_console.status("starting") as status,
    ):

        def step(text: str) -> None:
            status.update(text)
            if not as_json:
                err_console.print(f"[green]✓[/] {text}", highlight=False)

        try:
            summary = run(
                folder,
                requests=requests,
                ckan_url=url,
                ckan_token=token,
                risk_data=risk_data,
                progress=step,
            )
        except ConnectorError as exc:
            fail(exc, as_json=as_json)
    if as_json:
        print_json(summary)
        return
    console.print(_summary_table(summary))
    opened = summary["open_data"]
    console.print(
        f"Try: tabadul evidence verify {folder}/evidence-alert.json --ca {folder}/ca.pem",
        highlight=False,
    )
    console.print(
        f"     tabadul audit verify {folder}/governance.sqlite --ca {folder}/ca.pem "
        f"--witness {folder}/MA.GOV.MEF.TAX.db",
        highlight=False,
    )
    console.print(
        f"     tabadul opendata pull {next(iter(opened['datasets']))} -o {folder}/pulled-again "
        f"--ca {folder}/ca.pem",
        highlight=False,
    )


def _summary_table(summary: dict[str, Any]) -> Table:
    """The demo's figures as a two-column table."""
    table = Table(title="Tabadul demo", show_header=False)
    table.add_column("figure")
    table.add_column("value", overflow="fold")  # URLs and hashes shown whole
    table.add_row("messages sent (confirmed)", str(summary["messages_sent"]))
    table.add_row("messages accepted by receivers", str(summary["accepted"]))
    rejects = ", ".join(f"{code}: {n}" for code, n in summary["rejects_by_code"].items())
    table.add_row("refused, by code", rejects)
    table.add_row("alerts received by tax", str(summary["alerts_received_by_tax"]))
    resent = summary["dead_letter"]
    table.add_row(
        "dead letter fixed and resent",
        f"{resent['code']} after {resent['attempts']} attempts; at tax "
        + " -> ".join(resent["status_at_tax"]),
    )
    receipts = summary["receipts"]
    table.add_row(
        "declarations, by the subscribers' receipts",
        "; ".join(
            f"{party}: " + ", ".join(f"{n} {state}" for state, n in states.items())
            for party, states in receipts.items()
        ),
    )
    risk = summary["risk"]
    table.add_row(
        "customs risk lanes",
        ", ".join(f"{lane}: {n}" for lane, n in risk["lanes"].items())
        + f" (model {risk['model']['version']}, hold-out AUC {risk['model']['auc']:.3f})",
    )
    for a in risk["highest"]:
        table.add_row(
            f"risk of {a['declaration']}",
            f"{a['lane']} {a['score']:.3f}: {'; '.join(a['reasons']) or '-'}",
        )
    retrained = risk["retrained"]
    table.add_row(
        "inspections fed back",
        f"{risk['inspected']} inspected, fraud in {risk['frauds_found']}; retrained: "
        + (
            f"version {retrained['version']} replaces {retrained['previous']}"
            if retrained["replaced"]
            else retrained.get("message")
            or f"version {retrained['previous']} kept: the challenger did worse"
        ),
    )
    table.add_row(
        "request round trip", f"p50 {summary['rpc_ms_p50']} ms, max {summary['rpc_ms_max']} ms"
    )
    for name, log in summary["logs"].items():
        table.add_row(
            f"log of {name}",
            f"{log['records']} records, intact, root {log['root']}…, "
            f"witnessed up to {log['witnessed_size']}",
        )
    audit = summary["witnessed"]["audit"]
    table.add_row(
        "governance audit log",
        f"signed head of {audit['size']} entries cosigned by {len(audit['witnesses'])} "
        f"connectors; verified with the CA: {audit['verified']}",
    )
    accesses = summary["access_log"]
    table.add_row(
        f"who consulted taxpayer {accesses['taxpayer']}",
        "; ".join(
            f"{a['requester']} for {a['purpose']} ({a['outcome']})"
            for a in accesses["consultations"]
        )
        or "-",
    )
    evidence = summary["evidence"]
    table.add_row(
        "evidence for an alert",
        f"record {evidence['position']} of {evidence['tree_size']} in {evidence['log_id']}, "
        f"sender signature {evidence['sender_signature']}",
    )
    opened = summary["open_data"]
    for dataset_id, published in opened["datasets"].items():
        table.add_row(
            f"open data: {dataset_id}",
            f"{published['status']}, version {published['version']}, {published['url']}",
        )
    pulled = opened["pulled"]
    table.add_row(
        "consumer pull",
        f"{pulled['name']} version {pulled['version']}: "
        + (
            "every SHA-256 and the schema verified"
            if pulled["ok"]
            else "; ".join(pulled["problems"])
        ),
    )
    table.add_row(
        "governance refusals", ", ".join(f"{c}: {n}" for c, n in opened["refusals_by_code"].items())
    )
    table.add_row("governance audit log", f"{opened['audit_entries']} entries, chain intact")
    table.add_row("files", f"{summary['folder']}/ ({len(summary['files'])} files)")
    return table
