"""Validate a CSV resource against its dataset's Table Schema with Frictionless.

The report is plain data: whether the file is valid, how many rows were read and each error
with its Frictionless code, row number, field name and a message. Messages are built from the
error's title and note, never from the offending cell, so a report can be logged or shown to
a reviewer without leaking the data it is about.

Published CSV is one format, not a guess: UTF-8 (a byte-order mark allowed) and commas
(RFC 4180), so Frictionless is told so instead of sniffing the dialect. A fast path reads the
file once with the ``csv`` module and Frictionless's own cell readers (the same type and
constraint checks, without its per-row machinery); when it is certain the file is valid it
says so, and anything it is not certain about (a problem found, a schema option it does not
handle) goes to Frictionless, which makes the report.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import frictionless
from frictionless.formats import CsvControl

from opendata._errors import InvalidSchema


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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataReport:
        """A report back from its ``as_dict`` form (e.g. as kept with a review)."""
        return cls(
            valid=bool(data["valid"]),
            rows=int(data["rows"]),
            errors=tuple(DataError(**error) for error in data.get("errors") or ()),
        )


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


ENCODING = "utf-8-sig"
# Called with the number of rows read so far, every _EVERY rows, while a file is checked.
RowProgress = Callable[[int], None]
_EVERY = 50_000


def _schema(table_schema: Mapping[str, Any]) -> frictionless.Schema:
    try:
        return frictionless.Schema.from_descriptor(dict(table_schema))
    except frictionless.FrictionlessException as exc:
        raise InvalidSchema(
            f"the Table Schema is not valid: {exc.error.note or exc.error.title}"
        ) from exc


class _Certain:
    """Frictionless's own cell readers over ``csv`` rows; ``ok`` is False at the first doubt."""

    def __init__(self, schema: frictionless.Schema) -> None:
        self.names = [field.name for field in schema.fields]
        self._readers = [field.create_cell_reader() for field in schema.fields]
        self._unique = [i for i, f in enumerate(schema.fields) if f.constraints.get("unique")]
        self._seen: list[set[Any]] = [set() for _ in self._unique]
        self._key = [self.names.index(name) for name in schema.primary_key]
        self._keys: set[tuple[Any, ...]] = set()

    def ok(self, row: list[str]) -> bool:
        """The row has the right width, is not blank, every cell passes its field's type and
        constraints, and no unique value or primary key repeats."""
        if len(row) != len(self.names) or not any(row):
            return False
        values = []
        for cell_reader, cell in zip(self._readers, row, strict=True):
            value, notes = cell_reader(cell)
            if notes:
                return False
            values.append(value)
        return self._distinct(values)

    def _distinct(self, values: list[Any]) -> bool:
        for seen, i in zip(self._seen, self._unique, strict=True):
            if values[i] is not None:
                if values[i] in seen:
                    return False
                seen.add(values[i])
        if self._key:
            key = tuple(values[i] for i in self._key)
            if None in key or key in self._keys:
                return False
            self._keys.add(key)
        return True


def _fast_rows(path: Path, schema: frictionless.Schema, progress: RowProgress | None) -> int | None:
    """The row count when the file is certainly valid (the header is exactly the field
    names and every row is :meth:`_Certain.ok`); None when Frictionless must decide."""
    if schema.foreign_keys or schema.fields_match not in (None, "exact"):
        return None
    check = _Certain(schema)
    rows = 0
    try:
        with path.open(encoding=ENCODING, newline="") as stream:
            reader = csv.reader(stream)
            if next(reader, None) != check.names:
                return None
            for row in reader:
                if not check.ok(row):
                    return None
                rows += 1
                if progress is not None and rows % _EVERY == 0:
                    progress(rows)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return rows


def validate_resource(
    csv_path: Path | str,
    table_schema: Mapping[str, Any],
    *,
    progress: RowProgress | None = None,
) -> DataReport:
    """Validate the CSV file at ``csv_path`` (UTF-8, commas) against ``table_schema`` (a
    Table Schema dict).

    Errors in the data (wrong types, missing required values, extra or missing columns, an
    unreadable file) are reported, not raised. A schema Frictionless cannot read raises
    :class:`InvalidSchema`.
    """
    path = Path(csv_path).resolve()
    schema = _schema(table_schema)
    rows = _fast_rows(path, schema, progress)
    if rows is not None:
        return DataReport(valid=True, rows=rows, errors=())
    return _frictionless(path, schema)


def _frictionless(path: Path, schema: frictionless.Schema) -> DataReport:
    """Frictionless's full validation and its report."""
    # Frictionless refuses absolute paths as "not safe"; a base path plus the name is allowed.
    resource = frictionless.Resource(
        path=path.name,
        basepath=str(path.parent),
        schema=schema,
        format="csv",
        encoding=ENCODING,
        control=CsvControl(delimiter=","),
    )
    report = resource.validate()
    errors = tuple(_error(error) for task in report.tasks for error in task.errors)
    rows = sum(int(task.stats.get("rows") or 0) for task in report.tasks)
    return DataReport(valid=bool(report.valid) and not errors, rows=rows, errors=errors)
