"""``tabadul log``: check a connector's message log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from exchange._errors import LogError, LogIntegrityError
from exchange.log import LogStore, open_store, verify_log
from tabadul.cli._output import console, fail, print_json, usage_error

log_app = typer.Typer(help="Check a connector's message log.", no_args_is_help=True)


def _public_key(path: Path | None, *, as_json: bool) -> Ed25519PublicKey | None:
    if path is None:
        return None
    try:
        key = load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        usage_error("bad-key", f"cannot read a public key from {path}: {exc}", as_json=as_json)
    if not isinstance(key, Ed25519PublicKey):
        usage_error("bad-key", f"{path} does not hold an Ed25519 public key", as_json=as_json)
    return key


@log_app.command("verify")
def verify(
    log: Annotated[str, typer.Argument(help="SQLite file of the log, or a postgresql:// URL.")],
    name: Annotated[
        str, typer.Option("--name", help="Schema of the log in PostgreSQL.")
    ] = "message_log",
    public_key: Annotated[
        Path | None,
        typer.Option("--public-key", help="PEM Ed25519 key to check the head signatures."),
    ] = None,
    log_id: Annotated[
        str | None, typer.Option("--log-id", help="The log id every signed head must carry.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Re-hash every record and check it against the signed tree heads.

    Exit 0 when intact, 1 with the first bad position when not, 2 if it cannot be read.
    """
    key = _public_key(public_key, as_json=as_json)
    store: LogStore | None = None
    try:
        store = open_store(log, name=name, create=False)
        report = verify_log(store, public_key=key, log_id=log_id)
    # ``code`` is a ClassVar on the error tree, which mypy will not match to the protocol's
    # instance attribute; _output.reporting ignores the same mismatch.
    except LogIntegrityError as exc:
        fail(exc, as_json=as_json, exit_code=1)
    except LogError as exc:
        fail(exc, as_json=as_json, exit_code=2)
    finally:
        if store is not None:
            store.close()
    if as_json:
        print_json({"ok": True, **report.as_dict()})
        return
    console.print(f"[bold green]intact[/] {report.size} records, root {report.root.hex()}")
    unsigned = report.size - report.signed_size
    console.print(
        f"{report.heads} signed heads, latest covers {report.signed_size} records"
        + (f" ({unsigned} appended since)" if unsigned else "")
        + ("" if report.signatures_checked else "; signatures not checked (no --public-key)"),
        highlight=False,
    )
