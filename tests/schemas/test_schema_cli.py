"""``tabadul schema``: validate, check and list, with their exit codes and JSON output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tabadul.cli._schema import schema_app

app = typer.Typer()
app.add_typer(schema_app, name="schema")
runner = CliRunner()
THING = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://example.org/test.thing/1.0.0",
    "title": "Thing",
    "description": "A test type.",
    "x-tabadul": {
        "type": "test.thing",
        "version": "1.0.0",
        "classification": "PUBLIC",
        "kind": "event",
    },
    "type": "object",
    "additionalProperties": False,
    "properties": {"id": {"type": "string"}},
}


def dump(tmp_path: Path, name: str, data: object) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return str(path)


def test_validate_valid_payload_exits_zero(tmp_path, example):
    """A valid payload prints 'valid' with the resolved version and exits 0."""
    file = dump(tmp_path, "p.json", example("customs.declaration-lodged"))
    result = runner.invoke(app, ["schema", "validate", "customs.declaration-lodged", file])
    assert result.exit_code == 0, result.output
    assert "valid: customs.declaration-lodged 1.1.0" in result.output


def test_validate_invalid_payload_lists_every_error(tmp_path, example):
    """An invalid payload prints each error with its JSON path and exits 1."""
    payload = example("customs.declaration-lodged")
    payload["items"][1]["hs_code"] = "12"
    payload["regime"] = "nope"
    file = dump(tmp_path, "p.json", payload)
    result = runner.invoke(
        app, ["schema", "validate", "customs.declaration-lodged", file, "--version", "1.0.0"]
    )
    assert result.exit_code == 1
    assert "invalid: customs.declaration-lodged 1.0.0, 2 error(s)" in result.output
    assert "$.items[1].hs_code: does not match pattern '^[0-9]{6,10}$' [pattern]" in result.output
    assert "$.regime: must be one of" in result.output


def test_validate_json_output(tmp_path, example):
    """--json prints the report as data."""
    file = dump(tmp_path, "p.json", {"purpose": "passport-issuance"})
    result = runner.invoke(
        app, ["schema", "validate", "civil.person-lookup.request", file, "--json"]
    )
    assert result.exit_code == 1
    assert json.loads(result.output) == {
        "ok": False,
        "type": "civil.person-lookup.request",
        "version": "1.0.0",
        "errors": [{"path": "$", "message": "'cin' is a required property", "keyword": "required"}],
    }


def test_validate_unknown_type_exits_two(tmp_path):
    """An unknown type is a coded error listing the registered types, exit 2."""
    file = dump(tmp_path, "p.json", {})
    result = runner.invoke(app, ["schema", "validate", "civil.nope", file, "--json"])
    assert result.exit_code == 2
    error = json.loads(result.output)["error"]
    assert error["code"] == "unknown-message-type"
    assert "civil.person-lookup.request" in error["message"]


def test_validate_unknown_version_exits_two(tmp_path):
    """An unknown version is a coded error, exit 2, without a traceback."""
    file = dump(tmp_path, "p.json", {})
    result = runner.invoke(
        app, ["schema", "validate", "civil.person-lookup.request", file, "--version", "9.9.9"]
    )
    assert result.exit_code == 2
    assert "unknown-schema-version" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("content", "code"),
    [(None, "unreadable-file"), ("{oops", "malformed-json"), (b"\xff\xfe", "malformed-json")],
)
def test_validate_bad_file_exits_two(tmp_path, content, code):
    """A missing or non-JSON payload file is a coded error with exit 2."""
    path = tmp_path / "p.json"
    if isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    result = runner.invoke(
        app, ["schema", "validate", "civil.person-lookup.request", str(path), "--json"]
    )
    assert result.exit_code == 2
    assert json.loads(result.output)["error"]["code"] == code


def test_validate_with_schema_directory(tmp_path):
    """--schemas loads another directory instead of the shipped schemas."""
    schemas = tmp_path / "schemas" / "test" / "thing"
    schemas.mkdir(parents=True)
    (schemas / "1.0.0.json").write_text(json.dumps(THING))
    file = dump(tmp_path, "p.json", {"id": "x"})
    result = runner.invoke(
        app, ["schema", "validate", "test.thing", file, "--schemas", str(tmp_path / "schemas")]
    )
    assert result.exit_code == 0, result.output


def test_check_compatible_exits_zero(tmp_path):
    """Two compatible schemas: exit 0."""
    old = dump(tmp_path, "old.json", {"type": "integer"})
    new = dump(tmp_path, "new.json", {"type": "number"})
    result = runner.invoke(app, ["schema", "check", old, new])
    assert result.exit_code == 0
    assert "compatible" in result.output


def test_check_incompatible_lists_changes(tmp_path):
    """Breaking changes are listed with code and path, exit 1."""
    old = dump(tmp_path, "old.json", {"type": "object", "properties": {"a": {"type": "number"}}})
    new = dump(
        tmp_path,
        "new.json",
        {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
    )
    result = runner.invoke(app, ["schema", "check", old, new])
    assert result.exit_code == 1
    assert "2 breaking change(s)" in result.output
    assert "required-added at #/properties/a" in result.output
    assert "type-narrowed at #/properties/a" in result.output


def test_check_json_output(tmp_path):
    """--json prints the compatibility report as data."""
    old = dump(tmp_path, "old.json", {"type": "string"})
    new = dump(tmp_path, "new.json", {"type": "string", "maxLength": 3})
    result = runner.invoke(app, ["schema", "check", old, new, "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["compatible"] is False
    assert [c["code"] for c in report["changes"]] == ["max-length-lowered"]


def test_check_refuses_non_schema_json(tmp_path):
    """A JSON file that is not an object or boolean is a coded usage error."""
    old = dump(tmp_path, "old.json", [1, 2])
    new = dump(tmp_path, "new.json", {})
    result = runner.invoke(app, ["schema", "check", old, new, "--json"])
    assert result.exit_code == 2
    assert json.loads(result.output)["error"]["code"] == "invalid-schema-file"


def test_list_json(registry):
    """list --json gives every entry with classification, kind and digest."""
    result = runner.invoke(app, ["schema", "list", "--json"])
    assert result.exit_code == 0
    listed = json.loads(result.output)
    assert len(listed) == len(registry)
    lodged = [e for e in listed if e["type"] == "customs.declaration-lodged"]
    assert [e["version"] for e in lodged] == ["1.0.0", "1.1.0"]
    assert lodged[0]["digest"] == registry.get("customs.declaration-lodged", "1.0.0").digest
    assert {"classification", "kind", "title"} <= set(lodged[0])


def test_list_table():
    """list prints a table naming the types."""
    result = runner.invoke(app, ["schema", "list"])
    assert result.exit_code == 0
    assert "treasury.suspicious-transaction-alert" in result.output


def test_list_bad_directory_exits_two(tmp_path):
    """list --schemas with a missing directory is a coded error, exit 2."""
    result = runner.invoke(app, ["schema", "list", "--schemas", str(tmp_path / "x"), "--json"])
    assert result.exit_code == 2
    assert json.loads(result.output)["error"]["code"] == "invalid-schema-file"
