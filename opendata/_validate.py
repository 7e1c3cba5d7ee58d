"""Validate a CSV resource against its dataset's Table Schema with Frictionless.

The report is plain data: whether the file is valid, how many rows were read and each error
with its Frictionless code, row number, field name and a message. Messages are built from the
error's title and note, never from the offending cell, so a report can be logged or shown to
a reviewer without leaking the data it is about.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import frictionless


@dataclass(frozen=True, slots=True)
class DataError:
    """One problem found in a resource: ``code`` is the Frictionless error type."""

    code: str
    row: int | None
    field: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "row": self.row, "field": self.field, "message": self.message}


@dataclass(frozen=True, slots=True)
class DataReport:
    """The outcome of validating one resource; ``valid`` is False when any error was found."""

    valid: bool
    rows: int
    errors: tuple[DataError, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "rows": self.rows,
            "errors": [error.as_dict() for error in self.errors],
        }


def _error(error: Any) -> DataError:
    """Our view of a Frictionless error, without its cell value."""
    row = getattr(error, "row_number", None)
    if row is None:
        row_numbers = getattr(error, "row_numbers", None) or [None]
        row = row_numbers[0]
    field = getattr(error, "field_name", None) or getattr(error, "label", None) or None
    note = str(getattr(error, "note", "") or "")
    title = str(error.title)
    return DataError(
        code=str(error.type),
        row=int(row) if row is not None else None,
        field=str(field) if field else None,
        message=f"{title}: {note}" if note else title,
    )


def validate_resource(csv_path: Path | str, table_schema: Mapping[str, Any]) -> DataReport:
    """Validate the CSV file at ``csv_path`` against ``table_schema`` (a Table Schema dict).

    Errors in the data (wrong types, missing required values, extra or missing columns, an
    unreadable file) are reported, not raised. A schema Frictionless cannot read raises
    ``ValueError``.
    """
    path = Path(csv_path).resolve()
    try:
        schema = frictionless.Schema.from_descriptor(dict(table_schema))
    except frictionless.FrictionlessException as exc:
        raise ValueError(f"invalid Table Schema: {exc.error.note or exc.error.title}") from exc
    # Frictionless refuses absolute paths as "not safe"; a base path plus the name is allowed.
    resource = frictionless.Resource(path=path.name, basepath=str(path.parent), schema=schema)
    report = resource.validate()
    errors = tuple(_error(error) for task in report.tasks for error in task.errors)
    rows = sum(int(task.stats.get("rows") or 0) for task in report.tasks)
    return DataReport(valid=bool(report.valid) and not errors, rows=rows, errors=errors)
