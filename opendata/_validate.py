"""Validate a CSV resource against its dataset's Table Schema with Frictionless.

The report is plain data: whether the file is valid, how many rows were read and each error
with its Frictionless code, row number, field name and a message. Messages are built from the
error's title and note, never from the offending cell, so a report can be logged or shown to
a reviewer without leaking the data it is about.

The file is read as the PII screening reads it, through :func:`governance.open_table` with the
declared dialect (RFC 4180 for published data: commas, double quotes, UTF-8 with an optional
byte-order mark, a header row) and within its limits; Frictionless is given every option of
the same dialect, so that it sniffs nothing. The header is checked first: when it is not the
schema's field names, in order, the report says so (``dialect-mismatch`` when another known
delimiter would have read them, else Frictionless's label errors, at most
:data:`MAX_HEADER_ERRORS`) without reading a row. A fast path then reads every row once with
Frictionless's own cell readers (the same type and constraint checks, without its per-row
machinery); when it is certain the file is valid it says so, and anything it is not certain
about (a problem found, a schema option it does not handle) goes to Frictionless, which makes
the report. Frictionless only ever reads a file the bounded reader has read to its end.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import frictionless
from frictionless.formats import CsvControl

from governance import (
    RFC4180,
    BadSource,
    CsvTable,
    Dialect,
    NotUtf8,
    TableLimits,
    TooLarge,
    open_table,
    other_dialect,
)
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
MAX_HEADER_ERRORS = 100


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


def _header_errors(table: CsvTable, names: Sequence[str]) -> tuple[DataError, ...]:
    """What keeps the header from being exactly ``names``: another dialect, or the labels
    that differ, position by position (at most MAX_HEADER_ERRORS, then a summary)."""
    header = table.header
    if header == list(names):
        return ()
    other = other_dialect(table.first_line, names, table.dialect)
    if other is not None:
        return (
            DataError(
                "dialect-mismatch",
                1,
                None,
                f"the header is the Table Schema's field names when read with the delimiter "
                f"{other.delimiter!r}, but the dataset's dialect is {table.dialect.delimiter!r}",
            ),
        )
    errors: list[DataError] = []
    for position in range(max(len(header), len(names))):
        label = header[position] if position < len(header) else None
        name = names[position] if position < len(names) else None
        if label == name:
            continue
        if len(errors) == MAX_HEADER_ERRORS:
            errors.append(
                DataError(
                    "header-mismatch",
                    1,
                    None,
                    f"the header has {len(header):,} columns where the Table Schema has "
                    f"{len(names):,} fields; the first {MAX_HEADER_ERRORS} differences are listed",
                )
            )
            break
        if name is None:
            errors.append(DataError("extra-label", 1, label, f"Extra Label: column {position + 1}"))
        elif label is None:
            errors.append(
                DataError("missing-label", 1, name, f"Missing Label: column {position + 1}")
            )
        else:
            errors.append(
                DataError(
                    "incorrect-label",
                    1,
                    name,
                    f"Incorrect Label: column {position + 1} is not field {name!r}",
                )
            )
    return tuple(errors)


def _rows(
    table: CsvTable, schema: frictionless.Schema, progress: RowProgress | None
) -> tuple[bool, int]:
    """Read every row: whether the fast path is certain they are valid (each row
    :meth:`_Certain.ok`; when not, Frictionless must decide), and how many there are."""
    check = None
    if not schema.foreign_keys and schema.fields_match in (None, "exact"):
        check = _Certain(schema)
    rows = 0
    for row in table.rows():
        if check is not None and not check.ok(row):
            check = None  # read on: Frictionless reads only what the limits allowed
        rows += 1
        if progress is not None and rows % _EVERY == 0:
            progress(rows)
    return check is not None, rows


def validate_resource(  # noqa: PLR0913 - keyword-only options
    csv_path: Path | str,
    table_schema: Mapping[str, Any],
    *,
    dialect: Dialect = RFC4180,
    limits: TableLimits | None = None,
    name: str | None = None,
    progress: RowProgress | None = None,
) -> DataReport:
    """Validate the CSV file at ``csv_path``, read with ``dialect`` within ``limits`` (see
    :func:`governance.open_table`; ``name`` is how messages name the file), against
    ``table_schema`` (a Table Schema dict).

    Errors in the data (a header that is not the field names, wrong types, missing required
    values, extra or missing cells, bytes that are not UTF-8 or not CSV) are reported, not
    raised. A schema Frictionless cannot read raises :class:`InvalidSchema`; a file over the
    limits raises the :class:`governance.TooLarge` kind it breaks (it is not read further).
    """
    path = Path(csv_path).resolve()
    schema = _schema(table_schema)
    exact = schema.fields_match in (None, "exact")
    try:
        with open_table(path, dialect, limits, name=name) as table:
            problems = _header_errors(table, schema.field_names) if exact else ()
            if problems:
                return DataReport(valid=False, rows=0, errors=problems)
            certain, rows = _rows(table, schema, progress)
    except TooLarge:
        raise
    except NotUtf8 as exc:
        return _unreadable("encoding-error", exc)
    except BadSource as exc:
        return _unreadable("source-error", exc)
    if certain:
        return DataReport(valid=True, rows=rows, errors=())
    return _frictionless(path, schema, dialect)


def _unreadable(code: str, exc: BadSource) -> DataReport:
    return DataReport(valid=False, rows=0, errors=(DataError(code, exc.line, None, exc.message),))


def _frictionless(
    path: Path, schema: frictionless.Schema, dialect: Dialect = RFC4180
) -> DataReport:
    """Frictionless's full validation and its report, every option of ``dialect`` given."""
    # Frictionless refuses absolute paths as "not safe"; a base path plus the name is allowed.
    resource = frictionless.Resource(
        path=path.name,
        basepath=str(path.parent),
        schema=schema,
        format="csv",
        encoding=ENCODING,
        control=csv_control(dialect),
    )
    report = resource.validate()
    errors = tuple(_error(error) for task in report.tasks for error in task.errors)
    rows = sum(int(task.stats.get("rows") or 0) for task in report.tasks)
    return DataReport(valid=bool(report.valid) and not errors, rows=rows, errors=errors)


def csv_control(dialect: Dialect) -> CsvControl:
    """Frictionless's CSV control for ``dialect``, every option set so none is sniffed."""
    return CsvControl(
        delimiter=dialect.delimiter,
        quote_char=dialect.quote_char,
        double_quote=True,
        skip_initial_space=False,
    )
