"""The backward-compatibility checker: a table of schema pairs and their verdicts."""

from __future__ import annotations

from typing import Any

import pytest

from schemas import BreakingChange, CompatibilityReport, check_compatibility


def obj(props: dict[str, Any], required: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(required), **extra}


STR = {"type": "string"}
INT = {"type": "integer"}
NUM = {"type": "number"}
CLOSED = {"additionalProperties": False}

PAIRS: list[tuple[str, Any, Any, tuple[str, ...]]] = [
    # --- compatible ---
    ("identical", obj({"a": STR}, ("a",)), obj({"a": STR}, ("a",)), ()),
    (
        "optional-property-added-to-closed-object",
        obj({"a": STR}, **CLOSED),
        obj({"a": STR, "b": INT}, **CLOSED),
        (),
    ),
    ("required-dropped", obj({"a": STR}, ("a",)), obj({"a": STR}), ()),
    ("integer-widened-to-number", obj({"n": INT}), obj({"n": NUM}), ()),
    ("type-list-widened", {"type": "string"}, {"type": ["string", "null"]}, ()),
    ("enum-widened", {"type": "string", "enum": ["a"]}, {"type": "string", "enum": ["a", "b"]}, ()),
    (
        "max-length-raised",
        {"type": "string", "maxLength": 5},
        {"type": "string", "maxLength": 9},
        (),
    ),
    ("minimum-lowered", {"type": "integer", "minimum": 5}, {"type": "integer", "minimum": 0}, ()),
    ("annotations-only-changed", {**STR, "description": "x"}, {**STR, "title": "y"}, ()),
    ("additional-properties-opened", obj({}, **CLOSED), obj({}), ()),
    ("pattern-removed", {"type": "string", "pattern": "^a$"}, STR, ()),
    (
        "const-kept-inside-enum",
        {"type": "string", "const": "a"},
        {"type": "string", "enum": ["a", "b"]},
        (),
    ),
    (
        "ref-target-widened",
        {"$defs": {"d": {"type": "string", "maxLength": 3}}, **obj({"a": {"$ref": "#/$defs/d"}})},
        {"$defs": {"d": {"type": "string", "maxLength": 8}}, **obj({"a": {"$ref": "#/$defs/d"}})},
        (),
    ),
    (
        "ref-inlined",
        {"$defs": {"d": STR}, **obj({"a": {"$ref": "#/$defs/d"}})},
        obj({"a": STR}),
        (),
    ),
    ("items-widened", {"type": "array", "items": INT}, {"type": "array", "items": NUM}, ()),
    ("min-items-lowered", {"type": "array", "minItems": 2}, {"type": "array", "minItems": 1}, ()),
    ("new-major-schema-true", obj({"a": STR}), True, ()),
    ("numeric-keyword-on-strings-ignored", STR, {"type": "string", "minimum": 3}, ()),
    (
        "any-of-kept",
        {"anyOf": [STR, INT]},
        {"anyOf": [STR, NUM]},
        (),
    ),
    # --- breaking ---
    ("required-added", obj({"a": STR}), obj({"a": STR}, ("a",)), ("required-added",)),
    (
        "property-removed-from-closed-object",
        obj({"a": STR, "b": STR}, **CLOSED),
        obj({"a": STR}, **CLOSED),
        ("property-removed",),
    ),
    ("number-narrowed-to-integer", obj({"n": NUM}), obj({"n": INT}), ("type-narrowed",)),
    ("type-changed", {"type": "string"}, {"type": "integer"}, ("type-narrowed",)),
    (
        "enum-narrowed",
        {"type": "string", "enum": ["a", "b"]},
        {"type": "string", "enum": ["a"]},
        ("enum-narrowed",),
    ),
    ("enum-added", STR, {"type": "string", "enum": ["a"]}, ("enum-narrowed",)),
    (
        "const-changed",
        {"type": "string", "const": "a"},
        {"type": "string", "const": "b"},
        ("const-changed",),
    ),
    (
        "pattern-changed",
        {"type": "string", "pattern": "^[0-9]{6}$"},
        {"type": "string", "pattern": "^[0-9]{6,10}$"},
        ("pattern-changed",),
    ),
    ("pattern-added", STR, {"type": "string", "pattern": "^a"}, ("pattern-added",)),
    (
        "minimum-raised",
        {"type": "integer", "minimum": 0},
        {"type": "integer", "minimum": 1},
        ("minimum-raised",),
    ),
    (
        "minimum-made-exclusive",
        {"type": "number", "minimum": 0},
        {"type": "number", "exclusiveMinimum": 0},
        ("minimum-raised",),
    ),
    (
        "maximum-lowered",
        {"type": "integer", "maximum": 10},
        {"type": "integer", "maximum": 9},
        ("maximum-lowered",),
    ),
    ("maximum-added", NUM, {"type": "number", "maximum": 9}, ("maximum-lowered",)),
    ("min-length-raised", STR, {"type": "string", "minLength": 1}, ("min-length-raised",)),
    (
        "max-length-lowered",
        {"type": "string", "maxLength": 10},
        {"type": "string", "maxLength": 9},
        ("max-length-lowered",),
    ),
    (
        "min-items-raised",
        {"type": "array"},
        {"type": "array", "minItems": 1},
        ("min-items-raised",),
    ),
    (
        "max-items-lowered",
        {"type": "array", "maxItems": 5},
        {"type": "array", "maxItems": 4},
        ("max-items-lowered",),
    ),
    (
        "unique-items-added",
        {"type": "array"},
        {"type": "array", "uniqueItems": True},
        ("unique-items-added",),
    ),
    (
        "additional-properties-closed",
        obj({"a": STR}),
        obj({"a": STR}, **CLOSED),
        ("additional-properties-closed",),
    ),
    ("format-added", STR, {"type": "string", "format": "date"}, ("format-added",)),
    (
        "format-changed",
        {"type": "string", "format": "date"},
        {"type": "string", "format": "date-time"},
        ("format-changed",),
    ),
    ("items-constrained", {"type": "array"}, {"type": "array", "items": INT}, ("items-changed",)),
    (
        "nested-array-item-narrowed",
        obj(
            {"items": {"type": "array", "items": obj({"hs": {"type": "string", "maxLength": 10}})}}
        ),
        obj({"items": {"type": "array", "items": obj({"hs": {"type": "string", "maxLength": 6}})}}),
        ("max-length-lowered",),
    ),
    (
        "ref-target-narrowed",
        {"$defs": {"d": STR}, **obj({"a": {"$ref": "#/$defs/d"}})},
        {"$defs": {"d": INT}, **obj({"a": {"$ref": "#/$defs/d"}})},
        ("type-narrowed",),
    ),
    (
        "unresolvable-ref",
        obj({"a": STR}),
        obj({"a": {"$ref": "https://example.org/other.json"}}),
        ("ref-unresolvable",),
    ),
    (
        "property-constrained-in-open-object",
        obj({"a": STR}),
        obj({"a": STR, "b": INT}),
        ("property-constrained",),
    ),
    (
        "one-of-added",
        STR,
        {"type": "string", "oneOf": [{"maxLength": 3}, {"minLength": 5}]},
        ("one-of-changed",),
    ),
    (
        "any-of-narrowed",
        {"anyOf": [STR, INT]},
        {"anyOf": [STR, {"type": "boolean"}]},
        ("any-of-changed",),
    ),
    (
        "unknown-keyword-added",
        STR,
        {"type": "string", "contentEncoding": "base64"},
        ("keyword-changed",),
    ),
    ("false-schema", STR, False, ("schema-narrowed",)),
    (
        "several-changes-at-once",
        obj({"a": STR, "n": NUM}),
        obj({"a": {"type": "string", "maxLength": 2}, "n": INT}, ("a",), **CLOSED),
        ("required-added", "max-length-lowered", "type-narrowed", "additional-properties-closed"),
    ),
]


@pytest.mark.parametrize(("old", "new", "codes"), [p[1:] for p in PAIRS], ids=[p[0] for p in PAIRS])
def test_compatibility_table(old, new, codes):
    """The checker's verdict and breaking-change codes match the table."""
    report = check_compatibility(old, new)
    assert report.compatible is (not codes)
    assert report.codes == codes


def test_table_has_enough_pairs():
    """The table covers at least 25 pairs, both compatible and breaking."""
    assert len(PAIRS) >= 25
    assert any(not p[3] for p in PAIRS)
    assert sum(1 for p in PAIRS if p[3]) >= 15


def test_changes_carry_path_and_message():
    """Each change points to where it happened and says what changed."""
    old = obj({"items": {"type": "array", "items": obj({"hs_code": {"type": "string"}})}})
    new = obj(
        {"items": {"type": "array", "items": obj({"hs_code": {"type": "string", "maxLength": 6}})}}
    )
    report = check_compatibility(old, new)
    assert report == CompatibilityReport(
        compatible=False,
        changes=(
            BreakingChange(
                "max-length-lowered",
                "#/properties/items/items/properties/hs_code",
                "maxLength lowered from unbounded to 6",
            ),
        ),
    )
    assert report.as_dict()["changes"] == [
        {
            "code": "max-length-lowered",
            "path": "#/properties/items/items/properties/hs_code",
            "message": "maxLength lowered from unbounded to 6",
        }
    ]


def test_recursive_refs_terminate():
    """A self-referencing schema (a tree) is compared without looping forever."""
    tree = {
        "$defs": {"node": obj({"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}})},
        "$ref": "#/$defs/node",
    }
    assert check_compatibility(tree, tree).compatible


def test_enum_values_checked_against_new_constraints():
    """Old enum values are checked exactly: a new pattern that all of them match is fine."""
    old = {"type": "string", "enum": ["AB1", "CD2"]}
    assert check_compatibility(old, {"type": "string", "pattern": "^[A-Z]{2}[0-9]$"}).compatible
    report = check_compatibility(old, {"type": "string", "pattern": "^AB"})
    assert report.codes == ("enum-narrowed",)
    assert '"CD2"' in report.changes[0].message


def test_shipped_minor_version_is_compatible(registry):
    """customs.declaration-lodged 1.1.0 is backward compatible with 1.0.0."""
    old = registry.get("customs.declaration-lodged", "1.0.0").schema
    new = registry.get("customs.declaration-lodged", "1.1.0").schema
    assert check_compatibility(old, new).compatible
    assert check_compatibility(new, old).codes == ("property-removed",)


def test_the_alert_with_its_anomaly_score_is_a_compatible_minor_version(registry):
    """treasury.suspicious-transaction-alert 1.1.0 (the anomaly score, a new typology) reads
    every 1.0.0 alert; a 1.0.0 reader would not read the new typology."""
    old = registry.get("treasury.suspicious-transaction-alert", "1.0.0").schema
    new = registry.get("treasury.suspicious-transaction-alert", "1.1.0").schema
    assert check_compatibility(old, new).compatible
    assert not check_compatibility(new, old).compatible
