"""The registry: loading, lookup, digests, versioning rules and the error tree."""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from schemas import (
    Classification,
    InvalidSchemaFile,
    Kind,
    SchemaConflict,
    SchemaError,
    SchemaIncompatible,
    SchemaRegistry,
    UnknownType,
    UnknownVersion,
    schema_digest,
)

TYPE = "customs.declaration-lodged"
REQUIRED_TYPES = {
    "civil.person-lookup.request",
    "civil.person-lookup.response",
    "civil.birth-registered",
    "tax.compliance-certificate.request",
    "tax.compliance-certificate.response",
    "tax.declaration-filed",
    "customs.declaration-lodged",
    "customs.declaration-cleared",
    "treasury.payment-executed",
    "treasury.suspicious-transaction-alert",
    "property.parcel-lookup.request",
    "property.parcel-lookup.response",
}


def minimal(version: str = "1.0.0", **props: Any) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://example.org/test.thing/{version}",
        "title": "Thing",
        "description": "A test type.",
        "x-tabadul": {
            "type": "test.thing",
            "version": version,
            "classification": "PUBLIC",
            "kind": "event",
        },
        "type": "object",
        "additionalProperties": False,
        "required": ["id"],
        "properties": {"id": {"type": "string", "maxLength": 10}, **props},
    }


def test_shipped_registry_has_every_required_type(registry):
    """All the agencies' message types are shipped, plus a second customs version."""
    assert set(registry.types()) >= REQUIRED_TYPES
    assert registry.versions(TYPE) == ("1.0.0", "1.1.0")


def test_latest_and_exact_lookup(registry):
    """``latest`` and ``get(type)`` give the highest version; ``get(type, v)`` that version."""
    assert registry.latest(TYPE).version == "1.1.0"
    assert registry.get(TYPE).version == "1.1.0"
    assert registry.get(TYPE, "1.0.0").version == "1.0.0"
    assert (TYPE, "1.0.0") in registry
    assert TYPE in registry
    assert ("nope", "1.0.0") not in registry


def test_entries_know_classification_and_kind(registry):
    """Entries carry the x-tabadul classification and kind."""
    alert = registry.latest("treasury.suspicious-transaction-alert")
    assert (alert.classification, alert.kind) == (Classification.RESTRICTED, Kind.MESSAGE)
    lookup = registry.latest("civil.person-lookup.response")
    assert lookup.classification is Classification.RESTRICTED
    assert lookup.kind is Kind.RESPONSE


def test_digest_is_sha256_of_rfc8785_bytes(registry):
    """The digest is sha256 over the RFC 8785 canonical form of the schema."""
    entry = registry.get(TYPE, "1.0.0")
    expected = "sha256:" + hashlib.sha256(rfc8785.dumps(dict(entry.schema))).hexdigest()
    assert entry.digest == expected == schema_digest(entry.schema)


def test_digest_ignores_key_order_and_whitespace():
    """Two spellings of the same schema have one digest."""
    schema = minimal()
    reordered = json.loads(json.dumps(schema, sort_keys=True, indent=4))
    assert schema_digest(schema) == schema_digest(reordered)


def test_every_shipped_file_follows_the_conventions(registry):
    """Each shipped schema has $id, title, description, x-tabadul and a dotted type name."""
    for entry in registry.entries():
        assert entry.schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert entry.schema["$id"].endswith(f"{entry.version}.json")
        assert entry.title
        assert entry.schema["x-tabadul"]["type"] == entry.type


def test_minor_version_must_stay_compatible():
    """A 1.1.0 that tightens 1.0.0 is refused with SchemaIncompatible carrying the report."""
    registry = SchemaRegistry()
    registry.register(minimal())
    breaking = minimal("1.1.0")
    breaking["properties"]["id"]["maxLength"] = 5
    with pytest.raises(
        SchemaIncompatible, match=re.escape("not backward compatible with 1.0.0")
    ) as info:
        registry.register(breaking)
    assert info.value.report.codes == ("max-length-lowered",)
    assert info.value.as_dict()["code"] == "schema-incompatible"
    assert registry.versions("test.thing") == ("1.0.0",)


def test_new_major_version_may_break():
    """A 2.0.0 may drop and tighten fields."""
    registry = SchemaRegistry()
    registry.register(minimal())
    major = minimal("2.0.0")
    major["properties"]["id"]["maxLength"] = 5
    assert registry.register(major).version == "2.0.0"
    assert registry.latest("test.thing").version == "2.0.0"


def test_compatible_minor_version_is_accepted():
    """A 1.1.0 adding an optional field registers and becomes the latest."""
    registry = SchemaRegistry()
    registry.register(minimal())
    registry.register(minimal("1.1.0", note={"type": "string"}))
    assert registry.versions("test.thing") == ("1.0.0", "1.1.0")


def test_inserted_patch_must_be_compatible_with_its_successor():
    """Registering 1.0.1 between 1.0.0 and 1.1.0 checks both neighbours."""
    registry = SchemaRegistry()
    registry.register(minimal())
    registry.register(minimal("1.1.0"))
    wider = minimal("1.0.1", extra={"type": "string"})
    with pytest.raises(
        SchemaIncompatible, match=re.escape("1.1.0 would not be backward compatible")
    ):
        registry.register(wider)


def test_same_version_same_content_is_idempotent():
    """Registering an identical document again returns the existing entry."""
    registry = SchemaRegistry()
    first = registry.register(minimal())
    assert registry.register(copy.deepcopy(minimal())) is first
    assert len(registry) == 1


def test_same_version_other_content_conflicts():
    """A version is immutable: other content under it raises SchemaConflict."""
    registry = SchemaRegistry()
    registry.register(minimal())
    changed = minimal()
    changed["description"] = "Changed."
    with pytest.raises(SchemaConflict, match="already registered"):
        registry.register(changed)


def test_registry_copies_the_document():
    """Mutating the dict after registering does not change the registered schema."""
    registry = SchemaRegistry()
    schema = minimal()
    entry = registry.register(schema)
    schema["properties"]["id"]["maxLength"] = 1
    assert registry.validate("test.thing", "1.0.0", {"id": "abcdef"}).ok
    assert entry.digest == schema_digest(minimal())


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda s: s.pop("x-tabadul"), "x-tabadul"),
        (lambda s: s.pop("title"), "'title'"),
        (lambda s: s.update({"$schema": "http://json-schema.org/draft-07/schema#"}), "\\$schema"),
        (lambda s: s.update({"type": "objekt"}), "not a valid JSON Schema 2020-12"),
        (lambda s: s["x-tabadul"].update({"type": "Thing"}), "dotted lowercase"),
        (lambda s: s["x-tabadul"].update({"version": "1.0"}), "MAJOR.MINOR.PATCH"),
        (lambda s: s["x-tabadul"].update({"classification": "TOP"}), "classification"),
        (lambda s: s.update({"prefixItems": [{"type": "string"}]}), "prefixItems"),
        (lambda s: s.update({"unevaluatedProperties": False}), "unevaluatedProperties"),
        (lambda s: s["properties"].update(c={"$ref": "#/$defs/x", "maxLength": 2}), "siblings"),
        (lambda s: s["properties"].update(c={"$ref": "https://x.org/s.json"}), "\\$defs"),
        (lambda s: s["properties"].update(c={"type": "string", "format": "uri"}), "format"),
        (lambda s: s["properties"].update(c={"enum": [1, True]}), "need a 'type'"),
        (lambda s: s["properties"].update(c={"type": "array", "uniqueItems": True}), "uniqueItems"),
        (lambda s: s["properties"].update(c={"type": "string", "pattern": "^\\d+$"}), "\\[0-9\\]"),
        (lambda s: s["properties"].update(c={"type": "string", "pattern": "[\\s]"}), "ECMA-262"),
        (
            lambda s: s["properties"].update(c={"type": "string", "pattern": "^[[:alpha:]]+$"}),
            "POSIX",
        ),
        (
            lambda s: s["properties"].update(c={"type": "string", "additionalProperty": 1}),
            "additionalProperty",
        ),
    ],
)
def test_unregistrable_documents_are_refused(mutate, match):
    """Documents outside the rules raise InvalidSchemaFile with a precise message."""
    schema = minimal()
    mutate(schema)
    with pytest.raises(InvalidSchemaFile, match=match) as info:
        SchemaRegistry().register(schema)
    assert info.value.code == "invalid-schema-file"


def write(root: Path, relative: str, content: object) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))


def test_load_from_directory(tmp_path):
    """A directory laid out <agency>/<name>/<version>.json loads in version order."""
    write(tmp_path, "test/thing/1.1.0.json", minimal("1.1.0"))
    write(tmp_path, "test/thing/1.0.0.json", minimal())
    write(tmp_path, "test/thing/README.txt", "not a schema")
    registry = SchemaRegistry.from_directory(tmp_path)
    assert registry.versions("test.thing") == ("1.0.0", "1.1.0")


def test_load_refuses_misplaced_file(tmp_path):
    """A file whose place disagrees with its x-tabadul block is refused."""
    write(tmp_path, "test/thing/1.2.0.json", minimal())
    with pytest.raises(
        InvalidSchemaFile, match=re.escape("the file's place says test.thing 1.2.0")
    ):
        SchemaRegistry.from_directory(tmp_path)


def test_load_refuses_bad_json(tmp_path):
    """A file that is not JSON raises InvalidSchemaFile naming the file."""
    write(tmp_path, "test/thing/1.0.0.json", "{not json")
    with pytest.raises(
        InvalidSchemaFile, match=re.escape("test/thing/1.0.0.json: not readable as JSON")
    ):
        SchemaRegistry.from_directory(tmp_path)


def test_load_refuses_missing_directory(tmp_path):
    """A missing directory raises InvalidSchemaFile."""
    with pytest.raises(InvalidSchemaFile, match="not a directory"):
        SchemaRegistry.from_directory(tmp_path / "absent")


def test_empty_registry_reports_no_types():
    """Looking up in an empty registry says that no types are registered."""
    with pytest.raises(UnknownType, match="registered types: none"):
        SchemaRegistry().latest("a.b")


def test_every_error_is_a_schema_error_with_a_stable_code():
    """Every error derives from SchemaError and has a distinct code and as_dict shape."""
    errors = [UnknownType, UnknownVersion, InvalidSchemaFile, SchemaConflict, SchemaIncompatible]
    assert all(issubclass(error, SchemaError) for error in errors)
    assert len({error.code for error in [SchemaError, *errors]}) == 6
    error = InvalidSchemaFile("broken")
    assert error.as_dict() == {"code": "invalid-schema-file", "message": "broken"}
    assert str(error) == error.message == "broken"


def test_schemas_package_imports_nothing_internal_or_io():
    """schemas/ imports no other project package and no network or database library."""
    forbidden = {
        "exchange",
        "governance",
        "connectors",
        "opendata",
        "tabadul",
        "pika",
        "psycopg",
        "httpx",
        "requests",
        "fastapi",
        "ckanapi",
        "sqlalchemy",
    }
    package = Path(__file__).resolve().parents[2] / "schemas"
    imported = set()
    for file in package.glob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    assert "jsonschema" in imported
    assert not imported & forbidden


def test_every_shipped_schema_carries_a_valid_example(registry):
    """Each schema file's ``examples`` validate under that very version (docs stay true)."""
    for entry in registry.entries():
        assert entry.examples, f"{entry.type} {entry.version} has no example"
        for example in entry.examples:
            report = registry.validate(entry.type, entry.version, example)
            assert report.ok, (entry.type, entry.version, report.as_dict())
