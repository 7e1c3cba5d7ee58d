"""Streaming PII scan of a table: one pass, constant memory, any number of rows.

Per column the scanner keeps counters and at most ``max_positions`` row numbers per detector;
it never keeps a value. Each cell is stripped (and, when it is not ASCII, read as
:func:`~governance._cells.plain` text), then:

1. a formula cell (:func:`~governance._cells.is_formula`) is counted for the column's
   ``formula`` finding;
2. a plain number (no leading zero, at most twelve digits) holds no identifier; any other
   cell is full-matched once against the joined shapes of the detectors, and the first
   detector whose shape and check pass claims it;
3. a cell no detector claims that holds a digit or an ``@`` (and is not a single word that
   was already judged whole) is searched for identifiers in its text (the detectors'
   ``text_shape``, joined into one expression): each identifier found is an occurrence, and
   the cell counts once for each detector found in it.

Files are read through :func:`governance.open_table`, with the dialect declared (commas unless
told otherwise, never guessed from the file) and within its limits: what the scanner reads is
what the validator and the publisher read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import NamedTuple

from governance._cells import FORMULA_START, is_formula, plain
from governance._table import RFC4180, Dialect, TableLimits, open_table
from governance.pii._detectors import ColumnEvidence, ValueDetector, default_detectors
from governance.pii._hints import HINTS, ColumnHint, normalise_header
from governance.pii._report import FORMULA, SEVERITY, ColumnReport, Finding, PiiReport, Severity

Progress = Callable[[int, int], None]
"""Called as ``progress(bytes_read, total_bytes)`` while a file is scanned."""

_PROGRESS_EVERY = 16_384  # rows between progress calls
# A number without a leading zero, at most twelve digits and a short fraction: no identifier
# (phone numbers start with 0 or +, card numbers have 13 digits or more) fits in one.
_PLAIN_NUMBER = re.compile(r"[1-9]\d{0,11}+(?:[.,]\d{1,6}+)?+")
_NONZERO_DIGITS = frozenset("123456789")
_MAYBE_INSIDE = re.compile(r"[\d@]")


class _Counted(NamedTuple):
    """What a scan counted, by column (and by column and detector for the slot lists)."""

    non_empty: list[int]
    formulas: list[int]
    formula_rows: list[list[int]]
    cells: list[int]
    extra: list[int]
    positions: list[list[int]]


class Screener:
    """A composition of column hints and value detectors, compiled once, reusable."""

    __slots__ = (
        "_checks",
        "_combined",
        "_detectors",
        "_hints",
        "_shapes",
        "_text",
        "_text_detectors",
        "_text_shapes",
    )

    def __init__(
        self,
        detectors: Sequence[ValueDetector] | None = None,
        hints: Sequence[ColumnHint] = HINTS,
        *,
        country: str = "MA",
    ) -> None:
        """``detectors`` default to ``default_detectors(country)``. Raises ``ValueError`` if a
        detector's shapes have capturing groups (the scanner numbers the shapes' groups)."""
        self._detectors = tuple(default_detectors(country) if detectors is None else detectors)
        self._hints = tuple(hints)
        self._shapes = tuple(re.compile(d.shape) for d in self._detectors)
        in_text = [i for i, d in enumerate(self._detectors) if d.text_shape is not None]
        self._text_detectors = tuple(in_text)
        self._text_shapes = tuple(re.compile(self._detectors[i].text_shape or "") for i in in_text)
        for shape in (*self._shapes, *self._text_shapes):
            if shape.groups:
                raise ValueError(f"shape {shape.pattern!r}: use (?:...) groups in detector shapes")
        self._combined = re.compile("|".join(f"({d.shape})" for d in self._detectors) or "(?!)")
        self._text = (
            re.compile("|".join(f"({shape.pattern})" for shape in self._text_shapes))
            if in_text
            else None
        )
        self._checks = tuple(None if d.shape_is_check else d.match for d in self._detectors)

    @property
    def detectors(self) -> tuple[ValueDetector, ...]:
        return self._detectors

    def classify(self, value: str) -> ValueDetector | None:
        """The detector that claims ``value`` in a scan (before any column rule): the one
        claiming the whole cell, else the first found inside its text; or None."""
        text = plain(value.strip()).strip()
        index = self._claim(text)
        if index < 0 and _MAYBE_INSIDE.search(text):
            index = min(self._inside(text), default=-1)
        return None if index < 0 else self._detectors[index]

    def _claim(self, value: str, after: int = -1) -> int:
        """The index of the first detector after ``after`` whose shape and check pass on the
        whole of ``value``, or -1."""
        if after < 0:
            m = self._combined.fullmatch(value)
            if m is None:
                return -1
            first = (m.lastindex or 1) - 1
        else:
            first = after + 1
        for index in range(first, len(self._detectors)):
            if not self._shapes[index].fullmatch(value):
                continue
            check = self._checks[index]
            if check is None or check(value):
                return index
        return -1

    def _inside(self, text: str) -> dict[int, int]:
        """Detector index -> identifiers found inside ``text``. At each position where some
        detector's text shape matches, the longest match that passes its detector's check is
        taken (``AB123456@gov.ma`` is an address, not a card number); a position where none
        passes is given up one character at a time, so nothing it overlapped is missed."""
        found: dict[int, int] = {}
        if self._text is None:
            return found
        search = self._text.search
        shapes = self._text_shapes
        position = 0
        while (m := search(text, position)) is not None:
            start = position = m.start()
            taken, count = -1, 0
            # alternatives before m's did not match here: the joined expression tries in order
            for alternative in range(m.lastindex - 1 if m.lastindex else 0, len(shapes)):
                candidate = (
                    m if m.lastindex == alternative + 1 else shapes[alternative].match(text, start)
                )
                if candidate is None or candidate.end() <= position:
                    continue
                index = self._text_detectors[alternative]
                if found_here := self._detectors[index].count_in(candidate.group()):
                    taken, count, position = index, found_here, candidate.end()
            if taken < 0:
                position = start + 1
            else:
                found[taken] = found.get(taken, 0) + count
        return found

    def scan_rows(  # noqa: C901, PLR0912, PLR0915 - the hot loop is kept in one frame on purpose
        self,
        header: Sequence[str],
        rows: Iterable[Sequence[str]],
        *,
        max_positions: int = 5,
        sample_rows: int | None = None,
        on_rows: Callable[[int], None] | None = None,
    ) -> PiiReport:
        """Scan ``rows`` (each a sequence of cells, ragged allowed: missing cells are empty,
        extra cells become unnamed columns). Stops after ``sample_rows`` rows when given;
        ``on_rows(n)`` is called every few thousand rows. Exceptions from ``rows`` propagate."""
        ndet = len(self._detectors)
        fullmatch = self._combined.fullmatch
        checks = self._checks
        claim = self._claim
        inside = self._inside
        maybe_inside = _MAYBE_INSIDE.search
        plain_number = _PLAIN_NUMBER.fullmatch
        # per column: non-empty cells, formula cells and their first rows; per column and
        # detector (slot column * ndet + detector): cells matched, identifiers beyond one per
        # cell, first rows
        width = 0
        non_empty: list[int] = []
        formulas: list[int] = []
        formula_rows: list[list[int]] = []
        cells: list[int] = []
        extra: list[int] = []
        positions: list[list[int]] = []

        def widen(to: int) -> int:
            grow = to - len(non_empty)
            non_empty.extend([0] * grow)
            formulas.extend([0] * grow)
            formula_rows.extend([] for _ in range(grow))
            cells.extend([0] * (grow * ndet))
            extra.extend([0] * (grow * ndet))
            positions.extend([] for _ in range(grow * ndet))
            return to

        width = widen(len(header))
        number = 0
        complete = True
        for row in rows:
            if sample_rows is not None and number >= sample_rows:
                complete = False
                break
            number += 1
            if len(row) > width:
                width = widen(len(row))
            for column, raw in enumerate(row):
                value = raw.strip()
                if not value:
                    continue
                if not value.isascii() and not value.isalpha():
                    value = plain(value).strip()
                    if not value:
                        continue
                non_empty[column] += 1
                first = value[0]
                if first in FORMULA_START and is_formula(value):
                    formulas[column] += 1
                    if formulas[column] <= max_positions:
                        formula_rows[column].append(number)
                elif first in _NONZERO_DIGITS and plain_number(value):
                    continue
                m = fullmatch(value)
                if m is not None:
                    index = (m.lastindex or 1) - 1
                    check = checks[index]
                    if check is not None and not check(value):
                        index = claim(value, index)
                    if index >= 0:
                        slot = column * ndet + index
                        cells[slot] += 1
                        if cells[slot] <= max_positions:
                            positions[slot].append(number)
                        continue
                    if value.isalnum():  # one word, already judged whole
                        continue
                if maybe_inside(value) is None:
                    continue
                for index, found in inside(value).items():
                    slot = column * ndet + index
                    cells[slot] += 1
                    extra[slot] += found - 1
                    if cells[slot] <= max_positions:
                        positions[slot].append(number)
            if on_rows is not None and number % _PROGRESS_EVERY == 0:
                on_rows(number)
        counted = _Counted(non_empty, formulas, formula_rows, cells, extra, positions)
        return PiiReport(
            rows_scanned=number,
            columns=self._columns(header, width, counted),
            complete=complete,
        )

    def _columns(
        self, header: Sequence[str], width: int, counted: _Counted
    ) -> tuple[ColumnReport, ...]:
        names = [header[i].strip() if i < len(header) else "" for i in range(width)]
        seen: dict[str, int] = {}
        for name in names:
            seen[name] = seen.get(name, 0) + 1
        ndet = len(self._detectors)
        columns = []
        for index, name in enumerate(names):
            key = name if name and seen[name] == 1 else f"{name}#{index + 1}"
            hints = frozenset(h.category for h in self._hints if h.match(name)) if name else None
            hints = hints or frozenset()
            non_empty = counted.non_empty[index]
            findings: list[Finding] = []
            for d, detector in enumerate(self._detectors):
                slot = index * ndet + d
                evidence = ColumnEvidence(
                    key, normalise_header(name), hints, non_empty, counted.cells[slot]
                )
                if evidence.matches and detector.reportable(evidence):
                    findings.append(
                        Finding(
                            column=key,
                            detector=detector.name,
                            category=detector.category,
                            source="values",
                            matches=evidence.matches,
                            share=evidence.share,
                            rows=tuple(counted.positions[slot]),
                            hinted=detector.category in hints,
                            severity=SEVERITY.get(detector.category, Severity.HIGH),
                            occurrences=evidence.matches + counted.extra[slot],
                        )
                    )
            if formulas := counted.formulas[index]:
                findings.append(
                    Finding(
                        column=key,
                        detector=FORMULA,
                        category=FORMULA,
                        source="values",
                        matches=formulas,
                        share=formulas / non_empty,
                        rows=tuple(counted.formula_rows[index]),
                        hinted=False,
                        severity=SEVERITY[FORMULA],
                        occurrences=formulas,
                    )
                )
            confirmed = {f.category for f in findings}
            findings.extend(
                Finding(
                    column=key,
                    detector=hint.name,
                    category=hint.category,
                    source="header",
                    matches=0,
                    share=0.0,
                    rows=(),
                    hinted=True,
                    severity=SEVERITY.get(hint.category, Severity.HIGH),
                )
                for hint in self._hints
                if hint.category in hints and hint.category not in confirmed
            )
            columns.append(
                ColumnReport(
                    index=index,
                    name=name,
                    key=key,
                    non_empty=non_empty,
                    hints=tuple(sorted(hints)),
                    findings=tuple(findings),
                )
            )
        return tuple(columns)

    def scan_csv(  # noqa: PLR0913 - keyword-only options
        self,
        path: str | os.PathLike[str],
        *,
        max_positions: int = 5,
        sample_rows: int | None = None,
        dialect: Dialect = RFC4180,
        limits: TableLimits | None = None,
        name: str | None = None,
        progress: Progress | None = None,
    ) -> PiiReport:
        """Scan a CSV file of ``dialect`` (RFC 4180 unless told: never guessed) whose first row
        is the header, within ``limits`` (see :func:`governance.open_table`; ``name`` is how
        messages name the file).

        Raises :class:`~governance.BadSource` when the file cannot be opened or read as a
        table, :class:`~governance.NotUtf8` for bytes that are not UTF-8, and a
        :class:`~governance.TooLarge` subclass for a file, line, cell or header over the
        limits."""
        with open_table(path, dialect, limits, name=name) as table:
            report_progress = None
            if progress is not None:
                on_progress = progress

                def report_progress(_rows: int) -> None:
                    on_progress(table.bytes_read, table.size or table.bytes_read)

            report = self.scan_rows(
                table.header,
                table.rows(),
                max_positions=max_positions,
                sample_rows=sample_rows,
                on_rows=report_progress,
            )
            if progress is not None:
                total = table.size or table.bytes_read
                progress(total if report.complete else table.bytes_read, total)
            return report


@lru_cache(maxsize=8)
def _default_screener(country: str) -> Screener:
    return Screener(country=country)


def scan_rows(
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    max_positions: int = 5,
    sample_rows: int | None = None,
    country: str = "MA",
) -> PiiReport:
    """Screen rows already parsed (a header and an iterable of rows) with the shipped
    detectors; see ``Screener.scan_rows``."""
    return _default_screener(country).scan_rows(
        header, rows, max_positions=max_positions, sample_rows=sample_rows
    )


def scan_csv(  # noqa: PLR0913 - the options of Screener.scan_csv, keyword-only
    path: str | os.PathLike[str],
    *,
    sample_rows: int | None = None,
    max_positions: int = 5,
    country: str = "MA",
    dialect: Dialect = RFC4180,
    limits: TableLimits | None = None,
    name: str | None = None,
    progress: Progress | None = None,
) -> PiiReport:
    """Screen a CSV file with the shipped detectors; see ``Screener.scan_csv`` (and its
    errors). ``sample_rows`` stops the scan after that many data rows (the report then says
    ``complete: false``); None reads every row."""
    return _default_screener(country).scan_csv(
        path,
        max_positions=max_positions,
        sample_rows=sample_rows,
        dialect=dialect,
        limits=limits,
        name=name,
        progress=progress,
    )
