"""Where the command groups are registered."""

from __future__ import annotations

import typer


def mount(app: typer.Typer) -> None:
    """Add every command group to ``app``."""
    from tabadul.cli._access_log import access_log
    from tabadul.cli._api import api_app
    from tabadul.cli._audit import audit_app
    from tabadul.cli._bench import bench_app
    from tabadul.cli._ca import ca_app, keys_app
    from tabadul.cli._connector import connector_app
    from tabadul.cli._datasets import dataset_app
    from tabadul.cli._dead_letter import dead_letter_app
    from tabadul.cli._demo import demo
    from tabadul.cli._derive import derive
    from tabadul.cli._directory import directory_app
    from tabadul.cli._log import evidence_app, log_app
    from tabadul.cli._message import message_app
    from tabadul.cli._opendata import opendata_app, publish, withdraw
    from tabadul.cli._pii import pii_app
    from tabadul.cli._registry import registry_app
    from tabadul.cli._risk import risk_app
    from tabadul.cli._schema import schema_app
    from tabadul.cli._tokens import token_app
    from tabadul.cli._users import user_app
    from tabadul.cli._witness import witness_app

    app.add_typer(ca_app, name="ca")
    app.add_typer(keys_app, name="keys")
    app.add_typer(log_app, name="log")
    app.add_typer(evidence_app, name="evidence")
    app.add_typer(schema_app, name="schema")
    app.add_typer(bench_app, name="bench")
    app.command("demo")(demo)
    app.add_typer(connector_app, name="connector")
    app.add_typer(message_app, name="message")
    app.add_typer(dead_letter_app, name="dead-letter")
    app.add_typer(pii_app, name="pii")
    app.add_typer(audit_app, name="audit")
    app.add_typer(directory_app, name="directory")
    app.command("publish")(publish)
    app.command("withdraw")(withdraw)
    app.add_typer(opendata_app, name="opendata")
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")
    dataset_app.command("derive")(derive)
    app.add_typer(dataset_app, name="dataset")
    app.add_typer(registry_app, name="registry")
    app.add_typer(api_app, name="api")
    app.command("access-log")(access_log)
    app.add_typer(witness_app, name="witness")
    app.add_typer(risk_app, name="risk")
