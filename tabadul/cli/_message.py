"""``tabadul message status ID``: what became of a message an agency's connector sent, read
from its database and message log: confirmed by the broker, then per recipient (per
subscriber for an event) received or refused with the code, then handled or failed, as the
receivers' signed receipts tell (protocol.md §12). The connector may be running."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from connectors import ConnectorError, sent_message_status
from connectors._config import load_config
from tabadul.cli._common import Json, print_fields, print_ok, print_table
from tabadul.cli._output import not_found, reporting, usage_error

message_app = typer.Typer(
    help="What became of the messages a connector sent.", no_args_is_help=True
)

_MESSAGE_ID = re.compile(r"[0-9a-f]{32}\Z")


@message_app.command("status")
def status(
    message_id: Annotated[
        str, typer.Argument(metavar="ID", help="The message id (32 hex digits).")
    ],
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The sending connector's TOML configuration.")
    ],
    as_json: Json = False,
) -> None:
    """Show the status of message ID, per recipient (exit 1 if the connector knows it not)."""
    if not _MESSAGE_ID.match(message_id):
        usage_error("invalid-input", "a message id is 32 lower-case hex digits", as_json=as_json)
    with reporting(as_json=as_json, also=(ConnectorError,)):
        found = sent_message_status(load_config(config), message_id)
    if found is None:
        not_found(
            "unknown-message", f"this connector sent no message {message_id}", as_json=as_json
        )
    if as_json:
        print_ok(found.as_dict())
        return
    print_fields(
        f"message {found.message_id}",
        (
            ("type", found.message_type),
            ("kind", found.kind),
            ("to", found.to),
            ("sent", found.sent_at),
        ),
    )
    print_table(
        "deliveries",
        ("party", "state", "code", "at"),
        ((d.party, d.state, d.code or "", d.at) for d in found.deliveries),
        empty="no confirmation yet (sent, not yet confirmed by the broker)",
    )
