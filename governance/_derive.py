"""Derived datasets: make a table publishable by dropping or generalising its personal
columns, and keep the lineage.

:func:`derive_csv` is pure and streaming: it reads a UTF-8 CSV file (a BOM is allowed) row by
row, applies a plan of column operations and writes the derived file, in constant memory,
hashing both files on the way. The operations are small objects:

- ``Drop(column)``: the column is removed;
- ``GeneraliseDateToYear(column)``: ``YYYY-MM-DD`` -> ``YYYY``; anything else -> empty
  (counted);
- ``GeneraliseToRange(column, step)``: a decimal amount -> its range of width ``step``,
  e.g. ``1000-1999``; anything else -> empty (counted);
- ``GeneraliseToPrefix(column, keep)``: the first ``keep`` characters (e.g. of a postcode);
- ``NeutraliseFormulas(column)``: a formula cell (``=HYPERLINK(...)``, ``-2+3``: see
  :func:`governance._cells.is_formula`) gets a leading apostrophe, so that a spreadsheet shows
  it as text (OWASP's advice against CSV injection); other cells are left as they are.

Empty cells stay empty and are not counted. The source is read with :func:`open_table` (its
declared dialect, within its limits) and written in the same dialect.
:func:`record_derivation` stores the lineage (dataset, source and derived SHA-256, the
operations, who, when, why) with its audit entry and, when the derived bytes are the ones
under review, resolves the review's findings on the columns the plan changed, all in one
transaction: each operation resolves only the findings its output cannot hold
(:meth:`ColumnOp.resolves`: a dropped column, all of them; neutralised formulas, only the
``formula`` finding; a kept prefix, every finding but ``formula``).
:func:`lineage` reads the derivations of a dataset back.

Errors (all :class:`~governance.GovernanceError`)::

    InvalidInput                    invalid-input    (a bad plan: step, keep, a column twice)
    ├── UnknownColumn               unknown-column   (the plan names columns the file lacks)
    └── BadSource                   bad-source       (unreadable, not a CSV table, a row of
                                                      another width than the header; and
                                                      NotUtf8, the TooLarge family)
    Refused
    └── DerivedNotReviewed          derived-not-reviewed (the open review is of other bytes)
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa

from exchange import format_time, utcnow
from governance._audit import append_entry
from governance._cells import neutralise
from governance._db import GovernanceStore, datasets, findings, metadata
from governance._errors import (
    BadSource,
    InvalidInput,
    OtherAgency,
    Refused,
    UnknownDataset,
    WrongRole,
)
from governance._table import RFC4180, CsvTable, Dialect, TableLimits, open_table
from governance._workflow import Dataset, Resolution, Role, State, User, Workflow, check_action

__all__ = [
    "BadSource",
    "ColumnOp",
    "Derivation",
    "DerivationResult",
    "DerivedNotReviewed",
    "Drop",
    "GeneraliseDateToYear",
    "GeneraliseToPrefix",
    "GeneraliseToRange",
    "NeutraliseFormulas",
    "UnknownColumn",
    "column_op",
    "derivations",
    "derive_csv",
    "lineage",
    "record_derivation",
]

# ---- the lineage table (created by migration 0003) ---------------------------------------

derivations = sa.Table(
    "derivations",
    metadata,
    sa.Column("derivation_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset_id", sa.String(100), sa.ForeignKey("datasets.dataset_id"), nullable=False),
    sa.Column("source_sha256", sa.String(64), nullable=False),
    sa.Column("derived_sha256", sa.String(64), nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    # JSON list of operations as data: [{"op": "drop", "column": "cin"}, ...]
    sa.Column("operations", sa.JSON, nullable=False),
    # JSON object: generalised column -> cells emptied because they could not be read
    sa.Column("emptied", sa.JSON, nullable=False),
    sa.Column("actor", sa.String(64), sa.ForeignKey("users.user_id"), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", sa.String(24), nullable=False),
    # the open review whose findings this derivation resolved, if any
    sa.Column("review_id", sa.Integer, sa.ForeignKey("reviews.review_id"), nullable=True),
    # JSON list of the finding ids resolved
    sa.Column("resolved", sa.JSON, nullable=False),
    sa.Index("ix_derivations_dataset", "dataset_id", "derivation_id"),
)


# ---- errors ------------------------------------------------------------------------------


class UnknownColumn(InvalidInput):
    """The plan names columns that the file's header lacks (or names more than once)."""

    code = "unknown-column"

    def __init__(self, message: str, *, columns: Sequence[str]) -> None:
        super().__init__(message)
        self.columns = tuple(columns)

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "columns": list(self.columns)}


class DerivedNotReviewed(Refused):
    """The dataset's open review is of other bytes than the derived file: resolving its
    findings with this derivation would approve bytes that still hold the columns."""

    code = "derived-not-reviewed"


# ---- the operations ----------------------------------------------------------------------

_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})\Z")
_AMOUNT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\Z")


@dataclass(frozen=True, slots=True)
class ColumnOp:
    """One operation on one column. ``transform`` returns the new cell, or None when the
    (non-empty) cell cannot be read: it is then written empty and counted."""

    column: str
    op: ClassVar[str] = ""
    resolution: ClassVar[Resolution] = Resolution.GENERALISE

    def transform(self, value: str) -> str | None:
        raise NotImplementedError

    def resolves(self, detector: str) -> bool:  # noqa: ARG002 - by default, whatever it is
        """Whether this operation's output can no longer hold what ``detector`` found (a
        finding ``column:detector``), so that the derivation resolves that finding."""
        return True

    def as_dict(self) -> dict[str, Any]:
        return {"op": self.op, "column": self.column}

    def _check(self) -> None:
        if not isinstance(self.column, str) or not self.column:
            raise InvalidInput(f"{self.op}: the column must be a non-empty name")


@dataclass(frozen=True, slots=True)
class Drop(ColumnOp):
    """Remove the column."""

    op: ClassVar[str] = "drop"
    resolution: ClassVar[Resolution] = Resolution.DROP

    def __post_init__(self) -> None:
        self._check()

    def transform(self, value: str) -> str | None:  # never called: the column is gone
        return value


@dataclass(frozen=True, slots=True)
class GeneraliseDateToYear(ColumnOp):
    """An ISO date ``YYYY-MM-DD`` (a real calendar date, ASCII digits) becomes ``YYYY``."""

    op: ClassVar[str] = "date-to-year"

    def __post_init__(self) -> None:
        self._check()

    def transform(self, value: str) -> str | None:
        match = _DATE.match(value.strip())
        if match is None:
            return None
        try:
            date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            return None
        return match[1]


@dataclass(frozen=True, slots=True)
class GeneraliseToRange(ColumnOp):
    """A decimal amount (``1234``, ``-5.50``; ASCII digits, ``.`` for decimals) becomes the
    range of width ``step`` holding it: step 1000 turns ``1500.75`` into ``1000-1999`` and
    ``-5`` into ``-1000--1``. Exponents, NaN, infinity and thousands separators are refused."""

    step: int = 1
    op: ClassVar[str] = "range"

    def __post_init__(self) -> None:
        self._check()
        if isinstance(self.step, bool) or not isinstance(self.step, int) or self.step < 1:
            raise InvalidInput(f"range: the step must be a positive integer, got {self.step!r}")

    def transform(self, value: str) -> str | None:
        text = value.strip()
        if not _AMOUNT.match(text):
            return None
        try:
            whole = math.floor(Decimal(text))  # exact, however many digits
        except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
            return None
        low = whole // self.step * self.step
        return f"{low}-{low + self.step - 1}"

    def as_dict(self) -> dict[str, Any]:
        return {"op": self.op, "column": self.column, "step": self.step}


@dataclass(frozen=True, slots=True)
class GeneraliseToPrefix(ColumnOp):
    """Keep the first ``keep`` characters (code points) of the trimmed cell."""

    keep: int = 1
    op: ClassVar[str] = "prefix"

    def __post_init__(self) -> None:
        self._check()
        if isinstance(self.keep, bool) or not isinstance(self.keep, int) or self.keep < 1:
            raise InvalidInput(f"prefix: keep must be a positive integer, got {self.keep!r}")

    def transform(self, value: str) -> str | None:
        return value.strip()[: self.keep]

    def resolves(self, detector: str) -> bool:
        return detector != FORMULA  # the first characters of a formula are still one

    def as_dict(self) -> dict[str, Any]:
        return {"op": self.op, "column": self.column, "keep": self.keep}


FORMULA = "formula"  # the PII screening's detector of formula cells


@dataclass(frozen=True, slots=True)
class NeutraliseFormulas(ColumnOp):
    """Prefix every formula cell of the column with an apostrophe; other cells pass."""

    op: ClassVar[str] = "neutralise"
    resolution: ClassVar[Resolution] = Resolution.NEUTRALISE

    def __post_init__(self) -> None:
        self._check()

    def transform(self, value: str) -> str | None:
        return neutralise(value)

    def resolves(self, detector: str) -> bool:
        return detector == FORMULA  # any personal data in the column is still there


_OPS: dict[str, type[ColumnOp]] = {
    cls.op: cls
    for cls in (
        Drop,
        GeneraliseDateToYear,
        GeneraliseToRange,
        GeneraliseToPrefix,
        NeutraliseFormulas,
    )
}


def column_op(data: Mapping[str, Any]) -> ColumnOp:
    """An operation from its data form (what ``as_dict`` and the lineage hold)."""
    kind = data.get("op") if isinstance(data, Mapping) else None
    cls = _OPS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InvalidInput(f"unknown operation {kind!r}: one of {', '.join(sorted(_OPS))}")
    fields = {k: v for k, v in data.items() if k != "op"}
    try:
        return cls(**fields)
    except TypeError as exc:
        raise InvalidInput(f"{kind}: bad fields {sorted(fields)}") from exc


# ---- the derivation ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DerivationResult:
    """What :func:`derive_csv` did: both files' SHA-256 (hex), the data rows written, the
    derived header, the operations applied and, per generalised column, how many non-empty
    cells were emptied because they could not be read."""

    source_sha256: str
    target_sha256: str
    rows: int
    columns: tuple[str, ...]
    operations: tuple[ColumnOp, ...]
    emptied: Mapping[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source_sha256": self.source_sha256,
            "target_sha256": self.target_sha256,
            "rows": self.rows,
            "columns": list(self.columns),
            "operations": [op.as_dict() for op in self.operations],
            "emptied": dict(self.emptied),
        }


class _HashingWriter:
    """A text sink for ``csv.writer``: encodes to UTF-8, hashes and writes."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()

    def write(self, text: str) -> int:
        data = text.encode("utf-8")
        self.digest.update(data)
        self._raw.write(data)
        return len(text)


def _check_plan(plan: Sequence[ColumnOp]) -> tuple[ColumnOp, ...]:
    ops = tuple(plan)
    if isinstance(plan, str | bytes) or not all(isinstance(op, ColumnOp) for op in ops):
        raise InvalidInput("the plan must be a list of column operations")
    if not ops:
        raise InvalidInput("the plan is empty: name at least one column operation")
    seen: set[str] = set()
    for op in ops:
        if op.column in seen:
            raise InvalidInput(f"the plan names column {op.column!r} twice")
        seen.add(op.column)
    return ops


def _check_header(
    header: list[str], ops: tuple[ColumnOp, ...], source: Path
) -> dict[int, ColumnOp]:
    """Map each column index the plan touches to its operation; refuse unknown names."""
    missing = [op.column for op in ops if op.column not in header]
    if missing:
        raise UnknownColumn(
            f"{source.name} has no column {', '.join(map(repr, missing))} (its columns: "
            f"{', '.join(map(repr, header))})",
            columns=missing,
        )
    repeated = [op.column for op in ops if header.count(op.column) > 1]
    if repeated:
        raise UnknownColumn(
            f"{source.name} names column {', '.join(map(repr, repeated))} more than once: "
            "which one to change is ambiguous",
            columns=repeated,
        )
    return {header.index(op.column): op for op in ops}


def derive_csv(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    plan: Sequence[ColumnOp],
    *,
    dialect: Dialect = RFC4180,
    limits: TableLimits | None = None,
) -> DerivationResult:
    """Write ``target``: ``source`` (a CSV table of ``dialect``, header first; a BOM is
    allowed) with ``plan`` applied, streaming in constant memory within ``limits`` (see
    :func:`open_table`). The target is UTF-8 without BOM, the same dialect, CRLF line ends;
    it appears complete or not at all (written beside it, then renamed). Blank lines are
    skipped.

    Raises :class:`InvalidInput` for a bad plan, :class:`UnknownColumn` for columns the
    header lacks, :class:`BadSource` (or its ``NotUtf8`` and ``TooLarge`` kinds) for a file
    that cannot be read as a CSV table."""
    ops = _check_plan(plan)
    src, dst = Path(source), Path(target)
    try:
        same = dst.exists() and src.samefile(dst)
    except OSError:
        same = False
    if same:
        raise InvalidInput("the derived file must not overwrite its source")
    with open_table(src, dialect, limits, digest=True) as table:
        by_index = _check_header(table.header, ops, src)
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.name}.", dir=dst.parent)
        except OSError as exc:
            raise InvalidInput(f"cannot write {dst}: {exc.strerror or exc}") from exc
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                sink = _HashingWriter(out)
                rows, columns, emptied = _stream(table, sink, by_index)
                source_sha256 = table.sha256()
                out.flush()
                os.fsync(out.fileno())
            tmp.chmod(0o644)  # mkstemp's 0600 would hide the file from the publisher
            tmp.replace(dst)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return DerivationResult(
        source_sha256=source_sha256,
        target_sha256=sink.digest.hexdigest(),
        rows=rows,
        columns=columns,
        operations=ops,
        emptied=emptied,
    )


def _stream(
    table: CsvTable, sink: _HashingWriter, by_index: Mapping[int, ColumnOp]
) -> tuple[int, tuple[str, ...], dict[str, int]]:
    header = table.header
    writer = table.dialect.writer(sink)
    kept = [i for i in range(len(header)) if not isinstance(by_index.get(i), Drop)]
    changed = [(i, op) for i, op in by_index.items() if not isinstance(op, Drop)]
    emptied = {op.column: 0 for _, op in changed}
    columns = tuple(header[i] for i in kept)
    writer.writerow(columns)
    width = len(header)
    rows = 0
    for row in table.rows():
        if not row:
            continue
        if len(row) != width:
            raise BadSource(
                f"{table.name}, line {table.line}: {len(row)} fields where the header has {width}",
                table.line,
            )
        for i, op in changed:
            cell = row[i]
            if not cell.strip():
                continue
            new = op.transform(cell)
            if new is None:
                emptied[op.column] += 1
                new = ""
            row[i] = new
        writer.writerow([row[i] for i in kept])
        rows += 1
    return rows, columns, emptied


# ---- lineage -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Derivation:
    """One recorded derivation of a dataset (oldest first in :func:`lineage`)."""

    derivation_id: int
    dataset_id: str
    source_sha256: str
    derived_sha256: str
    rows: int
    operations: tuple[Mapping[str, Any], ...]
    emptied: Mapping[str, int]
    actor: str
    reason: str
    at: str
    review_id: int | None
    resolved: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "derivation_id": self.derivation_id,
            "dataset_id": self.dataset_id,
            "source_sha256": self.source_sha256,
            "derived_sha256": self.derived_sha256,
            "rows": self.rows,
            "operations": [dict(op) for op in self.operations],
            "emptied": dict(self.emptied),
            "actor": self.actor,
            "reason": self.reason,
            "at": self.at,
            "review_id": self.review_id,
            "resolved": list(self.resolved),
        }


_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_VERBS = {
    Resolution.DROP: "dropped",
    Resolution.GENERALISE: "generalised",
    Resolution.NEUTRALISE: "had its formula cells neutralised",
}


def _finding_column(finding_id: str) -> str:
    """The column of a PII finding id ``column:detector`` (a column may hold ``:``)."""
    return finding_id.rsplit(":", 1)[0]


def _finding_detector(finding_id: str) -> str:
    """The detector of a PII finding id ``column:detector``."""
    return finding_id.rsplit(":", 1)[-1]


def _check_steward(user: User, ds: Dataset) -> None:
    """Record lineage: a steward of the dataset's agency (as for resolving findings)."""
    if Role.STEWARD not in user.roles:
        raise WrongRole(
            f"{user.user_id} may not record a derivation: only a steward may",
            action="record_derivation",
            dataset_id=ds.dataset_id,
        )
    if user.agency != ds.owner_agency:
        raise OtherAgency(
            f"{user.user_id} belongs to {user.agency}, but dataset {ds.dataset_id} belongs to "
            f"{ds.owner_agency}: only people of {ds.owner_agency} may act on it",
            action="record_derivation",
            dataset_id=ds.dataset_id,
        )


def record_derivation(  # noqa: PLR0913 - keyword-only after the subject
    store: GovernanceStore,
    actor: User | str,
    dataset_id: str,
    result: DerivationResult,
    *,
    reason: str,
    clock: Callable[[], datetime] = utcnow,
) -> Derivation:
    """Record that ``result`` derived the dataset's bytes, in one transaction: the lineage
    row, its audit entry (``dataset.derive``, content: the derived SHA-256) and, when the
    dataset is IN_REVIEW with the derived bytes under review, the resolution of each open PII
    finding on a dropped (``drop``) or generalised (``generalise``) column, with the
    workflow's own checks and audit entries (``finding.resolve``). The actor must be a
    steward of the dataset's agency (and so, having resolved findings, may not approve).

    Refused with :class:`DerivedNotReviewed` when the open review is of other bytes (submit
    the derived file's SHA-256 for review, with the original file's findings)."""
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("a reason must be given (a non-empty text)")
    why = reason.strip()
    for what, digest in (("source", result.source_sha256), ("derived", result.target_sha256)):
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise InvalidInput(f"the {what} SHA-256 must be 64 lowercase hex characters")
    ops = _check_plan(result.operations)
    flow = Workflow(store, clock=clock)
    with store.transaction("record a derivation") as conn:
        user = flow._actor(conn, actor)  # noqa: SLF001 - the workflow's own reading
        ds = flow._dataset(conn, dataset_id, lock=True)  # noqa: SLF001
        _check_steward(user, ds)
        review = None
        if ds.state is State.IN_REVIEW:
            check_action("resolve_finding", user, ds)
            review = flow._open_review(conn, ds)  # noqa: SLF001
            if review.content_sha256 != result.target_sha256:
                raise DerivedNotReviewed(
                    f"dataset {dataset_id} is under review with other bytes (SHA-256 "
                    f"{review.content_sha256[:12]}…) than the derived file (SHA-256 "
                    f"{result.target_sha256[:12]}…): submit the derived file for review",
                    action="record_derivation",
                    dataset_id=dataset_id,
                )
        moment = flow._now()  # noqa: SLF001
        by_column = {op.column: op for op in ops}
        to_resolve = [
            (f.finding_id, op)
            for f in (review.findings if review else ())
            if f.resolution is None
            and (op := by_column.get(_finding_column(f.finding_id))) is not None
            and op.resolves(_finding_detector(f.finding_id))
        ]
        operations = [op.as_dict() for op in ops]
        emptied = {str(k): int(v) for k, v in result.emptied.items()}
        derivation_id = conn.execute(
            derivations.insert().returning(derivations.c.derivation_id),
            {
                "dataset_id": dataset_id,
                "source_sha256": result.source_sha256,
                "derived_sha256": result.target_sha256,
                "rows": result.rows,
                "operations": operations,
                "emptied": emptied,
                "actor": user.user_id,
                "reason": why,
                "at": format_time(moment),
                "review_id": review.review_id if review else None,
                "resolved": [fid for fid, _ in to_resolve],
            },
        ).scalar_one()
        append_entry(
            conn,
            actor=user.user_id,
            action="dataset.derive",
            subject=ds.subject,
            reason=why,
            content_sha256=result.target_sha256,
            details={
                "derivation": derivation_id,
                "source_sha256": result.source_sha256,
                "derived_sha256": result.target_sha256,
                "rows": result.rows,
                "operations": operations,
                "emptied": emptied,
                "review": review.review_id if review else None,
                "resolved": [fid for fid, _ in to_resolve],
            },
            at=moment,
        )
        for finding_id, op in to_resolve:
            assert review is not None
            verb = _VERBS[op.resolution]
            note = f"column {op.column!r} {verb} by derivation {derivation_id}: {why}"
            conn.execute(
                findings.update()
                .where(findings.c.review_id == review.review_id)
                .where(findings.c.finding_id == finding_id)
                .values(
                    resolution=op.resolution.value,
                    reason=note,
                    resolved_by=user.user_id,
                    resolved_at=format_time(moment),
                )
            )
            flow._move(  # noqa: SLF001 - the same transition and audit entry as resolve_finding
                conn,
                user,
                ds,
                "resolve_finding",
                reason=note,
                content=review.content_sha256,
                details={
                    "review": review.review_id,
                    "finding": finding_id,
                    "resolution": op.resolution.value,
                    "derivation": derivation_id,
                },
            )
        row = conn.execute(
            sa.select(derivations).where(derivations.c.derivation_id == derivation_id)
        ).one()
        return _derivation(row)


def lineage(store: GovernanceStore, dataset_id: str) -> list[Derivation]:
    """The recorded derivations of a dataset, oldest first (:class:`UnknownDataset` if it is
    not registered)."""
    with store.transaction("read a dataset's lineage") as conn:
        if (
            conn.execute(
                sa.select(datasets.c.dataset_id).where(datasets.c.dataset_id == dataset_id)
            ).first()
            is None
        ):
            raise UnknownDataset.of(dataset_id)
        rows = conn.execute(
            sa.select(derivations)
            .where(derivations.c.dataset_id == dataset_id)
            .order_by(derivations.c.derivation_id)
        ).all()
    return [_derivation(row) for row in rows]


def _derivation(row: sa.Row[Any]) -> Derivation:
    return Derivation(
        derivation_id=int(row.derivation_id),
        dataset_id=row.dataset_id,
        source_sha256=row.source_sha256,
        derived_sha256=row.derived_sha256,
        rows=int(row.rows),
        operations=tuple(dict(op) for op in row.operations),
        emptied={str(k): int(v) for k, v in dict(row.emptied).items()},
        actor=row.actor,
        reason=row.reason,
        at=row.at,
        review_id=None if row.review_id is None else int(row.review_id),
        resolved=tuple(row.resolved),
    )
