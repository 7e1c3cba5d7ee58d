"""``tabadul api serve``: the management API (and the console, when installed) over HTTP."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.markup import escape

from tabadul.api import create_app_from_settings, server_log_config
from tabadul.cli._common import DataDir, Db, DbSchema, settings
from tabadul.cli._output import console, reporting, usage_error

api_app = typer.Typer(help="Serve the management API.", no_args_is_help=True)


@api_app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", help="Port to listen on.", min=1, max=65535)
    ] = 8400,
    db: Db = None,
    schema: DbSchema = None,
    data_dir: DataDir = None,
    ckan_url: Annotated[
        str | None,
        typer.Option(
            "--ckan-url",
            help="The CKAN portal (default: $TABADUL_CKAN_URL, else http://127.0.0.1:5000).",
            show_default=False,
        ),
    ] = None,
    ckan_token_file: Annotated[
        Path | None,
        typer.Option(
            "--ckan-token-file",
            help="A file holding the portal's API token (default: $TABADUL_CKAN_TOKEN, or "
            "$TABADUL_CKAN_TOKEN_FILE).",
            show_default=False,
        ),
    ] = None,
    with_console: Annotated[
        bool, typer.Option("--console/--no-console", help="Serve the web console at /console.")
    ] = True,
) -> None:
    """Serve the management API until interrupted (SIGINT or SIGTERM).

    The governance database is opened (and migrated) first; the OpenAPI description is at
    /openapi.json and /docs. Settings not given as options come from the TABADUL_*
    variables (TABADUL_CA_DIR, TABADUL_CA_PASSPHRASE, TABADUL_METRICS_URLS,
    TABADUL_TRUSTED_PROXIES...).
    """
    with reporting():
        chosen = settings(db, schema, data_dir)
    if ckan_url is not None:
        chosen = dataclasses.replace(chosen, ckan_url=ckan_url)
    if ckan_token_file is not None:
        try:
            token = ckan_token_file.read_text("utf-8").strip()
        except OSError as exc:
            usage_error(
                "unreadable-file",
                f"cannot read the CKAN token file {ckan_token_file}: {exc.strerror or exc}",
            )
        chosen = dataclasses.replace(chosen, ckan_token=token)
    with reporting():
        app = create_app_from_settings(chosen, console=with_console)
    console.print(
        f"[bold green]serving[/] the management API on {escape(f'http://{host}:{port}')} "
        "(OpenAPI description at /docs)",
        highlight=False,
    )
    # The application itself believes forwarding headers, and only from the trusted proxies
    # (TABADUL_TRUSTED_PROXIES); uvicorn's own handling would believe any local peer.
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        log_config=server_log_config(),
        proxy_headers=False,
    )
