"""``tabadul audit``: check the governance audit log (its hash chain, Merkle tree, signed
head and witnessed heads), read it, and have its head witnessed over the bus."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from connectors import ConnectorError, Witnessing, build_connector, load_config
from exchange import cert_from_pem
from exchange.log import LOG_HEAD_TYPE, SignedTreeHead
from governance import AuditLog, AuditTampered, GovernanceError, GovernanceStore
from tabadul._witnessing import AuditLogKept
from tabadul.cli._common import read_bytes
from tabadul.cli._output import console, fail, print_json, reporting, usage_error
from tabadul.cli._witness import CosignatureFiles, WitnessDbs, gathered

audit_app = typer.Typer(help="Check and read the governance audit log.", no_args_is_help=True)

_DB = Annotated[str, typer.Argument(help="SQLite file of governance, or a postgresql:// URL.")]
_SCHEMA = Annotated[
    str | None, typer.Option("--schema", help="PostgreSQL schema of the governance tables.")
]
_JSON = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@contextmanager
def _opened(db: str, schema: str | None, *, as_json: bool) -> Iterator[AuditLog]:
    """The audit log of an existing governance database (never created nor migrated here);
    a database that cannot be read exits 2."""
    try:
        store = GovernanceStore.open(db, schema=schema, migrate=False)
    except GovernanceError as exc:
        fail(exc, as_json=as_json, exit_code=2)
    try:
        yield AuditLog(store)
    finally:
        store.close()


@audit_app.command("verify")
def verify(
    db: _DB,
    schema: _SCHEMA = None,
    ca: Annotated[
        Path | None,
        typer.Option(
            "--ca",
            help="The CA certificate (PEM): the head must then be signed by a key it issued.",
        ),
    ] = None,
    witness: WitnessDbs = None,
    cosignatures: CosignatureFiles = None,
    as_json: _JSON = False,
) -> None:
    """Re-hash every audit entry, check the chain, the Merkle tree and its signed head, and
    the heads the witnesses cosigned (those kept in the database, and --witness or
    --cosignatures: what the witnesses hold themselves).

    Exit 0 when intact, 1 with the first bad entry when not, 2 if it cannot be read.
    """
    ca_certificate = None
    if ca is not None:
        with reporting(as_json=as_json):
            ca_certificate = cert_from_pem(read_bytes(ca, "CA certificate", as_json=as_json))
    cosigned = gathered(witness, cosignatures, None, as_json=as_json)
    with _opened(db, schema, as_json=as_json) as log:
        try:
            report = log.verify(ca_certificate=ca_certificate, cosignatures=cosigned)
        except AuditTampered as exc:
            fail(exc, as_json=as_json, exit_code=1)
        except GovernanceError as exc:
            fail(exc, as_json=as_json, exit_code=2)
    if as_json:
        print_json({"ok": True, **report.as_dict()})
        return
    console.print(
        f"[bold green]intact[/] {report.count} entries, head {report.head_hash}", highlight=False
    )
    if report.log_id is None:
        console.print("the head is not signed (no governance key configured)", highlight=False)
    else:
        unsigned = report.count - report.signed_size
        console.print(
            f"signed head of {escape(report.log_id)} covers {report.signed_size} entries"
            + (f" ({unsigned} appended unsigned since)" if unsigned else "")
            + ("" if ca_certificate else "; its certificate not checked (no --ca)"),
            highlight=False,
        )
    if report.witnessed is not None:
        witnessed = report.witnessed
        console.print(
            f"witnessed: {witnessed.cosignatures} cosignatures by "
            f"{escape(', '.join(witnessed.witnesses))}, up to {witnessed.witnessed_size} entries",
            highlight=False,
        )


@audit_app.command("show")
def show(
    db: _DB,
    schema: _SCHEMA = None,
    subject: Annotated[
        str | None, typer.Option("--subject", help="Only entries about e.g. dataset:<id>.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", help="Only the last N entries.", min=1, max=10**9)
    ] = None,
    as_json: _JSON = False,
) -> None:
    """List audit entries, oldest first (this reads; `verify` checks)."""
    with _opened(db, schema, as_json=as_json) as log:
        try:
            entries = log.entries(subject=subject, limit=limit)
        except GovernanceError as exc:
            fail(exc, as_json=as_json, exit_code=2)
    if as_json:
        print_json({"ok": True, "entries": [e.as_dict() for e in entries]})
        return
    if not entries:
        console.print("no audit entry matches")
        return
    for e in entries:
        content = f" sha256:{e.content_sha256[:12]}" if e.content_sha256 else ""
        reason = f" — {e.reason}" if e.reason else ""
        console.print(
            escape(f"{e.seq:>6} {e.at} {e.actor} {e.action} {e.subject}{content}{reason}"),
            highlight=False,
            soft_wrap=True,
        )


@audit_app.command("witness")
def witness(
    db: _DB,
    config: Annotated[
        Path,
        typer.Option(
            "--config",
            "-c",
            help="The configuration of the registry's connector: the subsystem whose key "
            "signs the audit log's heads.",
        ),
    ],
    schema: _SCHEMA = None,
    wait: Annotated[
        float, typer.Option("--wait", min=1, max=3600, help="Seconds to wait for the witnesses.")
    ] = 30.0,
    as_json: _JSON = False,
) -> None:
    """Have the audit log's signed head witnessed: publish it over the bus from the
    registry's connector, answer the witnesses' consistency requests, and keep their
    cosignatures. Exit 0 when every subscribed witness cosigned, 1 otherwise."""
    with _opened(db, schema, as_json=as_json) as log:
        head = log.signed_head()
        if head is None:
            usage_error(
                "audit-unsigned",
                "the audit log has no signed head: configure TABADUL_GOVERNANCE_KEYS",
                as_json=as_json,
            )
        with reporting(as_json=as_json):
            try:
                connector = build_connector(load_config(config))
                witnessing = Witnessing(connector, [AuditLogKept(log, head.log_id)]).install()
            except ConnectorError as exc:
                fail(exc, as_json=as_json)
        witnesses = {str(w) for w in connector.directory.subscribers(LOG_HEAD_TYPE)}
        witnesses.discard(str(connector.me))
        connector.start()
        try:
            witnessing.publish_heads()
            cosigned = _cosigned_by(log, head, witnesses, wait)
        finally:
            connector.stop()
    missing = sorted(witnesses - cosigned)
    result = {
        "log": head.log_id,
        "size": head.size,
        "cosigned_by": sorted(cosigned),
        "missing": missing,
    }
    if as_json:
        print_json({"ok": not missing, **result})
    else:
        console.print(
            f"head of {escape(head.log_id)} at {head.size} entries cosigned by "
            f"{len(cosigned)} of {len(witnesses)} witnesses"
            + (f"; no answer from {escape(', '.join(missing))}" if missing else ""),
            highlight=False,
        )
    if missing:
        raise typer.Exit(1)


def _cosigned_by(log: AuditLog, head: SignedTreeHead, witnesses: set[str], wait: float) -> set[str]:
    """Who cosigned ``head``, once all of ``witnesses`` did or ``wait`` seconds passed."""
    deadline = time.monotonic() + wait
    while True:
        cosigned = {
            c.witness
            for c in log.cosignatures()
            if c.head.log_id == head.log_id and c.head.size == head.size
        }
        if witnesses <= cosigned or time.monotonic() >= deadline:
            return cosigned
        time.sleep(0.2)
