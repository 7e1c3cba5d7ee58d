"""Frictionless validation of a CSV resource against its Table Schema, reported as data."""

from __future__ import annotations

from pathlib import Path

import pytest

from opendata import InvalidSchema, validate_resource

SCHEMA = {
    "fields": [
        {"name": "station", "type": "string", "constraints": {"required": True}},
        {"name": "year", "type": "integer"},
        {"name": "ph", "type": "number"},
    ]
}


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "water.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_file_has_no_errors(tmp_path):
    """A file matching its schema is valid, with its row count."""
    report = validate_resource(_csv(tmp_path, "station,year,ph\nA,2024,7.1\nB,2025,6.9\n"), SCHEMA)
    assert report.valid
    assert report.rows == 2
    assert report.errors == ()
    assert report.as_dict() == {"valid": True, "rows": 2, "errors": []}


def test_wrong_type_is_reported_with_row_and_field(tmp_path):
    """A cell of the wrong type gives a type-error naming its row and field, not its value."""
    report = validate_resource(
        _csv(tmp_path, "station,year,ph\nA,2024,7.1\nB,SECRET-VALUE,6.9\n"), SCHEMA
    )
    assert not report.valid
    [error] = report.errors
    assert (error.code, error.row, error.field) == ("type-error", 3, "year")
    assert "SECRET-VALUE" not in error.message
    assert "SECRET-VALUE" not in str(report.as_dict())


def test_missing_required_value_is_reported(tmp_path):
    """An empty required cell gives a constraint-error on that field."""
    report = validate_resource(_csv(tmp_path, "station,year,ph\n,2024,7.1\n"), SCHEMA)
    assert not report.valid
    [error] = report.errors
    assert (error.code, error.row, error.field) == ("constraint-error", 2, "station")
    assert "required" in error.message


def test_extra_column_is_reported(tmp_path):
    """A column the schema does not declare gives an extra-label error on the header row."""
    report = validate_resource(_csv(tmp_path, "station,year,ph,note\nA,2024,7.1,x\n"), SCHEMA)
    assert not report.valid
    codes = {(e.code, e.row, e.field) for e in report.errors}
    assert ("extra-label", 1, "note") in codes
    assert report.as_dict()["errors"][0]["code"] == "extra-label"


def test_several_errors_are_all_reported(tmp_path):
    """Every bad cell is reported, in file order."""
    report = validate_resource(_csv(tmp_path, "station,year,ph\n,x,7\nB,2024,y\n"), SCHEMA)
    assert [(e.code, e.row, e.field) for e in report.errors] == [
        ("constraint-error", 2, "station"),
        ("type-error", 2, "year"),
        ("type-error", 3, "ph"),
    ]


def test_unreadable_schema_raises(tmp_path):
    """A schema Frictionless cannot read is refused with its own code, invalid-schema."""
    with pytest.raises(InvalidSchema, match="Table Schema"):
        validate_resource(_csv(tmp_path, "a\n1\n"), {"fields": "nope"})
