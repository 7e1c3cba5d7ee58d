"""``tabadul audit``: check the governance audit log's hash chain, and read it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.markup import escape

from governance import AuditLog, AuditTampered, GovernanceError, GovernanceStore
from tabadul.cli._output import console, fail, print_json

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
def verify(db: _DB, schema: _SCHEMA = None, as_json: _JSON = False) -> None:
    """Re-hash every audit entry and check the chain and its head.

    Exit 0 when intact, 1 with the first bad entry when not, 2 if it cannot be read.
    """
    with _opened(db, schema, as_json=as_json) as log:
        try:
            report = log.verify()
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
