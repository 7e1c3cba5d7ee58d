"""PII screening results as data: findings with counts and row numbers, never values."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from governance.pii._hints import (
    ADDRESS,
    BANK_ACCOUNT,
    BIRTH_DATE,
    EMAIL,
    NATIONAL_ID,
    PASSPORT,
    PERSON_NAME,
    PHONE,
)

FORMULA = "formula"
"""The category (and detector) of formula cells: text a spreadsheet would run on opening."""


class Severity(StrEnum):
    """How directly a finding identifies a person (or, for formula cells, acts on the
    reader's machine). Both levels block approval."""

    HIGH = "high"  # id card, account, phone, e-mail, name; a formula cell
    MEDIUM = "medium"  # identifies a person with other data: birth date, address


SEVERITY: dict[str, Severity] = {
    NATIONAL_ID: Severity.HIGH,
    PASSPORT: Severity.HIGH,
    BANK_ACCOUNT: Severity.HIGH,
    PHONE: Severity.HIGH,
    EMAIL: Severity.HIGH,
    PERSON_NAME: Severity.HIGH,
    BIRTH_DATE: Severity.MEDIUM,
    ADDRESS: Severity.MEDIUM,
    FORMULA: Severity.HIGH,
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One kind of PII in one column. ``id`` (``column:detector``) is stable across scans of
    the same file, so a review can record how each finding was resolved.

    ``source`` is ``values`` (``matches`` cells matched ``detector``, holding ``occurrences``
    identifiers in all, more when a cell of text holds several; ``rows`` are the first of
    them, 1-based data rows, the header not counted) or ``header`` (the column's name alone
    suggests the category; ``matches`` is 0). ``hinted`` says whether the header agrees with
    a ``values`` finding. The ``formula`` detector's findings are formula cells. Every finding
    blocks approval until the workflow resolves it.
    """

    column: str
    detector: str
    category: str
    source: str
    matches: int
    share: float
    rows: tuple[int, ...]
    hinted: bool
    severity: Severity
    blocking: bool = True
    occurrences: int = 0

    @property
    def id(self) -> str:
        return f"{self.column}:{self.detector}"

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "column": self.column,
            "detector": self.detector,
            "category": self.category,
            "source": self.source,
            "matches": self.matches,
            "occurrences": self.occurrences,
            "share": round(self.share, 4),
            "rows": list(self.rows),
            "hinted": self.hinted,
            "severity": self.severity.value,
            "blocking": self.blocking,
        }


@dataclass(frozen=True, slots=True)
class ColumnReport:
    """One column: ``index`` is 0-based; ``key`` is the name, made unique (``name#3``) when
    the header repeats or lacks it; ``hints`` are the categories its name suggests."""

    index: int
    name: str
    key: str
    non_empty: int
    hints: tuple[str, ...]
    findings: tuple[Finding, ...]

    @property
    def detectors(self) -> tuple[str, ...]:
        return tuple(f.detector for f in self.findings)

    def as_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "name": self.name,
            "key": self.key,
            "non_empty": self.non_empty,
            "hints": list(self.hints),
            "detectors": list(self.detectors),
        }


@dataclass(frozen=True, slots=True)
class PiiReport:
    """The outcome of screening one table. ``complete`` is false when the scan stopped at
    ``sample_rows`` before the end of the data."""

    rows_scanned: int
    columns: tuple[ColumnReport, ...]
    complete: bool = True

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for column in self.columns for f in column.findings)

    @property
    def has_findings(self) -> bool:
        return any(column.findings for column in self.columns)

    @property
    def blocking(self) -> bool:
        """True while any finding blocks approval."""
        return any(f.blocking for f in self.findings)

    def finding(self, finding_id: str) -> Finding | None:
        return next((f for f in self.findings if f.id == finding_id), None)

    def as_dict(self) -> dict[str, object]:
        return {
            "rows_scanned": self.rows_scanned,
            "complete": self.complete,
            "has_findings": self.has_findings,
            "blocking": self.blocking,
            "columns": [column.as_dict() for column in self.columns],
            "findings": [f.as_dict() for f in self.findings],
        }
