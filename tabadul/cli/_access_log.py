"""``tabadul access-log SUBJECT_ID``: who consulted a data subject's records, when, for which
purpose and on which legal basis, from the access logs of the connectors holding personal
data (their configuration files; the subject key in $TABADUL_SUBJECT_KEY)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tabadul._services import Settings
from tabadul._subjects import MAX_SUBJECT_ID, consultations
from tabadul.cli._common import Json, print_ok, print_table
from tabadul.cli._output import err_console, usage_error


def access_log(
    subject_id: Annotated[
        str, typer.Argument(metavar="SUBJECT_ID", help="The person's identifier (e.g. a CNIE).")
    ],
    configs: Annotated[
        list[Path] | None,
        typer.Option(
            "--config",
            "-c",
            help="A connector's configuration (repeat for each; default: $TABADUL_ACCESS_LOGS).",
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """List who consulted SUBJECT_ID's records, newest first (exit 1 if a holder could
    not be read)."""
    if not subject_id.strip() or len(subject_id) > MAX_SUBJECT_ID:
        usage_error(
            "invalid-input",
            f"a subject identifier is 1 to {MAX_SUBJECT_ID} characters",
            as_json=as_json,
        )
    sources = tuple(configs or ()) or Settings.from_env().access_logs
    if not sources:
        usage_error(
            "no-access-log",
            "name the connectors holding personal data with --config (or $TABADUL_ACCESS_LOGS)",
            as_json=as_json,
        )
    found = consultations(subject_id, sources)
    if as_json:
        print_ok(found.as_dict())
    else:
        print_table(
            "consultations",
            ("at", "holder", "requester", "type", "purpose", "legal basis", "outcome"),
            (
                (
                    a.at,
                    a.holder,
                    a.requester,
                    a.message_type,
                    a.purpose,
                    a.legal_reference or a.legal_basis,
                    a.outcome,
                )
                for a in found.accesses
            ),
            empty="no recorded consultation",
        )
        for problem in found.unavailable:
            err_console.print(
                f"not read {problem['source']}: [{problem['code']}] {problem['message']}",
                highlight=False,
                markup=False,
            )
    if found.unavailable:
        raise typer.Exit(1)
