"""``tabadul directory``: sign the bus registry as a directory and write it out."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from governance import GovernanceStore
from governance._registry import Registry
from tabadul._services import load_ca
from tabadul.cli._output import console, print_json, reporting, usage_error

# The longest validity a directory is signed for, as through the API (/registry/directory).
MAX_VALID_HOURS = 24 * 366

directory_app = typer.Typer(
    help="Publish the signed directory from the bus registry.", no_args_is_help=True
)


@directory_app.command("publish")
def publish(
    db: Annotated[
        str, typer.Option("--db", help="SQLite file of governance, or a postgresql:// URL.")
    ],
    ca_dir: Annotated[Path, typer.Option("--ca-dir", help="The operator's CA folder.")],
    actor: Annotated[str, typer.Option("--actor", help="The publishing operator's user id.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the directory.")],
    schema: Annotated[
        str | None, typer.Option("--schema", help="PostgreSQL schema of the governance tables.")
    ] = None,
    valid_hours: Annotated[
        int,
        typer.Option(
            "--valid-hours", help=f"How long the directory is valid (1 to {MAX_VALID_HOURS})."
        ),
    ] = 48,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Sign the registry with the CA as the next directory serial, store it, write it out.

    The CA passphrase is read from the environment variable TABADUL_CA_PASSPHRASE.
    Certificates revoked in the CA folder are listed as revoked too.
    """
    if not 1 <= valid_hours <= MAX_VALID_HOURS:
        usage_error(
            "invalid-input",
            f"--valid-hours {valid_hours}: a directory is valid 1 to {MAX_VALID_HOURS} hours",
            as_json=as_json,
        )
    with reporting(as_json=as_json):
        ca = load_ca(ca_dir)
        store = GovernanceStore.open(db, schema=schema, migrate=False)
        try:
            document = Registry(store).publish_directory(
                actor,
                ca.ca,
                valid_for=timedelta(hours=valid_hours),
                instance=ca.instance,
                also_revoked=ca.revoked_serials(),
            )
        finally:
            store.close()
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(output.name + ".tmp")
        tmp.write_bytes(document)
        tmp.replace(output)
    except OSError as exc:
        usage_error("output", f"cannot write {output}: {exc.strerror or exc}", as_json=as_json)
    body = json.loads(document)["directory"]
    summary = {
        "serial": body["serial"],
        "instance": body["instance"],
        "issued": body["issued"],
        "expires": body["expires"],
        "output": str(output),
        "members": len(body["members"]),
        "certificates": len(body["certificates"]),
        "revoked": len(body["revoked"]),
    }
    if as_json:
        print_json({"ok": True, **summary})
        return
    console.print(
        f"[bold green]published[/] directory serial {summary['serial']} "
        f"({summary['members']} members, {summary['certificates']} certificates, "
        f"{summary['revoked']} revoked), valid until {summary['expires']}, "
        f"written to {output}",
        highlight=False,
    )
