"""``tabadul schema``: validate payloads, check schema compatibility, list registered types.

Exit codes: 0 valid / compatible, 1 invalid / incompatible, 2 anything else (unknown type,
unreadable file, bad JSON), always with a coded message and never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from schemas import (
    CompatibilityReport,
    SchemaRegistry,
    ValidationReport,
    check_compatibility,
    default_registry,
)
from tabadul.cli._output import console, print_json, reporting, usage_error

schema_app = typer.Typer(
    help="Message-type schemas: validate payloads, check compatibility, list the registry.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
SchemasOption = Annotated[
    Path | None,
    typer.Option(
        "--schemas",
        help="Load schemas from this directory (<agency>/<name>/<version>.json) "
        "instead of the shipped ones.",
    ),
]


def _registry(directory: Path | None) -> SchemaRegistry:
    return default_registry() if directory is None else SchemaRegistry.from_directory(directory)


def _read_json(path: Path, *, as_json: bool) -> object:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        usage_error(
            "unreadable-file", f"cannot read {path}: {exc.strerror or exc}", as_json=as_json
        )
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        usage_error("malformed-json", f"{path} is not valid JSON: {exc}", as_json=as_json)


@schema_app.command("validate")
def validate_command(
    message_type: Annotated[str, typer.Argument(metavar="TYPE", help="Message type name.")],
    file: Annotated[Path, typer.Argument(metavar="FILE", help="JSON payload to validate.")],
    version: Annotated[
        str | None, typer.Option("--version", help="Schema version (default: the latest).")
    ] = None,
    schemas_dir: SchemasOption = None,
    as_json: JsonOption = False,
) -> None:
    """Validate a JSON payload against a message type's schema; print every error."""
    with reporting(as_json=as_json):
        registry = _registry(schemas_dir)
        entry = registry.get(message_type, version)
        payload = _read_json(file, as_json=as_json)
        report = registry.validate(entry.type, entry.version, payload)
    _print_validation(report, entry.type, entry.version, as_json=as_json)
    if not report.ok:
        raise typer.Exit(1)


def _print_validation(
    report: ValidationReport, message_type: str, version: str, *, as_json: bool
) -> None:
    if as_json:
        print_json({**report.as_dict(), "type": message_type, "version": version})
        return
    if report.ok:
        console.print(f"[green]valid[/]: {message_type} {version}", highlight=False)
        return
    console.print(
        f"[red]invalid[/]: {message_type} {version}, {len(report.errors)} error(s)",
        highlight=False,
        soft_wrap=True,
    )
    for issue in report.errors:
        console.print(
            f"  {issue.path}: {issue.message} [{issue.keyword}]", markup=False, soft_wrap=True
        )


def _read_schema(path: Path, *, as_json: bool) -> dict[str, Any] | bool:
    schema = _read_json(path, as_json=as_json)
    if isinstance(schema, dict | bool):
        return schema
    return usage_error(
        "invalid-schema-file", f"{path}: a schema must be a JSON object", as_json=as_json
    )


@schema_app.command("check")
def check_command(
    old: Annotated[Path, typer.Argument(metavar="OLD.json", help="The current schema.")],
    new: Annotated[Path, typer.Argument(metavar="NEW.json", help="The proposed schema.")],
    as_json: JsonOption = False,
) -> None:
    """Check that NEW accepts every document OLD accepts (backward compatibility)."""
    old_schema = _read_schema(old, as_json=as_json)
    new_schema = _read_schema(new, as_json=as_json)
    report = check_compatibility(old_schema, new_schema)
    _print_compatibility(report, as_json=as_json)
    if not report.compatible:
        raise typer.Exit(1)


def _print_compatibility(report: CompatibilityReport, *, as_json: bool) -> None:
    if as_json:
        print_json(report.as_dict())
        return
    if report.compatible:
        console.print("[green]compatible[/]: the new schema accepts every old document")
        return
    console.print(f"[red]incompatible[/]: {len(report.changes)} breaking change(s)")
    for change in report.changes:
        console.print(
            f"  {change.code} at {change.path}: {change.message}", markup=False, soft_wrap=True
        )


@schema_app.command("list")
def list_command(schemas_dir: SchemasOption = None, as_json: JsonOption = False) -> None:
    """List the registered message types and versions."""
    with reporting(as_json=as_json):
        entries = _registry(schemas_dir).entries()
    if as_json:
        print_json([entry.as_dict() for entry in entries])
        return
    table = Table()
    table.add_column("type", no_wrap=True)
    table.add_column("version", no_wrap=True)
    table.add_column("classification")
    table.add_column("kind")
    table.add_column("digest", overflow="fold")
    for entry in entries:
        table.add_row(
            entry.type, entry.version, entry.classification.value, entry.kind.value, entry.digest
        )
    console.print(table)
