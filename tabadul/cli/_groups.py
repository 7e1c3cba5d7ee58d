"""Where the command groups are registered."""

from __future__ import annotations

import typer


def mount(app: typer.Typer) -> None:
    """Add every command group to ``app``."""
    from tabadul.cli._audit import audit_app
    from tabadul.cli._bench import bench_app
    from tabadul.cli._ca import ca_app, keys_app
    from tabadul.cli._connector import connector_app
    from tabadul.cli._demo import demo
    from tabadul.cli._directory import directory_app
    from tabadul.cli._log import evidence_app, log_app
    from tabadul.cli._pii import pii_app
    from tabadul.cli._schema import schema_app

    app.add_typer(ca_app, name="ca")
    app.add_typer(keys_app, name="keys")
    app.add_typer(log_app, name="log")
    app.add_typer(evidence_app, name="evidence")
    app.add_typer(schema_app, name="schema")
    app.add_typer(bench_app, name="bench")
    app.command("demo")(demo)
    app.add_typer(connector_app, name="connector")
    app.add_typer(pii_app, name="pii")
    app.add_typer(audit_app, name="audit")
    app.add_typer(directory_app, name="directory")
