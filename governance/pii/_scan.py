"""Streaming PII scan of a table: one pass, constant memory, any number of rows.

Per column the scanner keeps counters and at most ``max_positions`` row numbers per detector;
it never keeps a value. Each cell is stripped and full-matched once against the joined shapes
of the detectors; the first detector whose shape and check pass claims the cell.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from pathlib import Path

from governance.pii._detectors import ColumnEvidence, ValueDetector, default_detectors
from governance.pii._errors import BadCsv, NotUtf8, UnreadableFile
from governance.pii._hints import HINTS, ColumnHint, normalise_header
from governance.pii._report import SEVERITY, ColumnReport, Finding, PiiReport, Severity

Progress = Callable[[int, int], None]
"""Called as ``progress(bytes_read, total_bytes)`` while a file is scanned."""

_PROGRESS_EVERY = 16_384  # rows between progress calls
_DELIMITERS = ",;\t|"


class Screener:
    """A composition of column hints and value detectors, compiled once, reusable."""

    __slots__ = ("_checks", "_combined", "_detectors", "_hints", "_shapes")

    def __init__(
        self,
        detectors: Sequence[ValueDetector] | None = None,
        hints: Sequence[ColumnHint] = HINTS,
        *,
        country: str = "MA",
    ) -> None:
        """``detectors`` default to ``default_detectors(country)``. Raises ``ValueError`` if a
        detector's shape has capturing groups (the scanner numbers the shapes' groups)."""
        self._detectors = tuple(default_detectors(country) if detectors is None else detectors)
        self._hints = tuple(hints)
        self._shapes = tuple(re.compile(d.shape) for d in self._detectors)
        for detector, shape in zip(self._detectors, self._shapes, strict=True):
            if shape.groups:
                raise ValueError(f"detector {detector.name!r}: use (?:...) groups in its shape")
        self._combined = re.compile("|".join(f"({d.shape})" for d in self._detectors))
        self._checks = tuple(None if d.shape_is_check else d.match for d in self._detectors)

    @property
    def detectors(self) -> tuple[ValueDetector, ...]:
        return self._detectors

    def classify(self, value: str) -> ValueDetector | None:
        """The detector that claims ``value`` in a scan (before any column rule), or None."""
        index = self._claim(value.strip())
        return None if index < 0 else self._detectors[index]

    def _claim(self, value: str, after: int = -1) -> int:
        """The index of the first detector after ``after`` whose shape and check pass."""
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

    def scan_rows(
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
        detectors = self._detectors
        ndet = len(detectors)
        fullmatch = self._combined.fullmatch
        checks = self._checks
        claim = self._claim
        width = 0
        non_empty: list[int] = []
        counts: list[int] = []
        positions: list[list[int]] = []

        def widen(to: int) -> int:
            grow = to - len(non_empty)
            non_empty.extend([0] * grow)
            counts.extend([0] * (grow * ndet))
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
                non_empty[column] += 1
                m = fullmatch(value)
                if m is None:
                    continue
                index = (m.lastindex or 1) - 1
                check = checks[index]
                if check is not None and not check(value):
                    index = claim(value, index)
                    if index < 0:
                        continue
                slot = column * ndet + index
                counts[slot] += 1
                if counts[slot] <= max_positions:
                    positions[slot].append(number)
            if on_rows is not None and number % _PROGRESS_EVERY == 0:
                on_rows(number)
        return PiiReport(
            rows_scanned=number,
            columns=self._columns(header, width, non_empty, counts, positions),
            complete=complete,
        )

    def _columns(
        self,
        header: Sequence[str],
        width: int,
        non_empty: list[int],
        counts: list[int],
        positions: list[list[int]],
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
            findings: list[Finding] = []
            for d, detector in enumerate(self._detectors):
                slot = index * ndet + d
                evidence = ColumnEvidence(
                    key, normalise_header(name), hints, non_empty[index], counts[slot]
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
                            rows=tuple(positions[slot]),
                            hinted=detector.category in hints,
                            severity=SEVERITY.get(detector.category, Severity.HIGH),
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
                    non_empty=non_empty[index],
                    hints=tuple(sorted(hints)),
                    findings=tuple(findings),
                )
            )
        return tuple(columns)

    def scan_csv(
        self,
        path: str | os.PathLike[str],
        *,
        max_positions: int = 5,
        sample_rows: int | None = None,
        delimiter: str | None = None,
        progress: Progress | None = None,
    ) -> PiiReport:
        """Scan a UTF-8 CSV file (a BOM is allowed) whose first row is the header.
        ``delimiter`` defaults to the one of ``, ; TAB |`` most frequent in the first line.

        Raises ``UnreadableFile`` when the file cannot be opened or read, ``NotUtf8`` for
        bytes that are not UTF-8, ``BadCsv`` for a file without a header row or that the
        ``csv`` module rejects (a field over its size limit, bad quoting)."""
        path = Path(path)
        try:
            raw = path.open("rb")
        except OSError as exc:
            raise UnreadableFile(f"cannot read {path}: {exc.strerror or exc}") from exc
        with raw:
            try:
                total = os.fstat(raw.fileno()).st_size
                head = raw.read(65_536)
                raw.seek(0)
            except OSError as exc:
                raise UnreadableFile(f"cannot read {path}: {exc.strerror or exc}") from exc
            sep = delimiter or _sniff_delimiter(head)
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            reader = csv.reader(text, delimiter=sep, strict=True)
            report_progress = None
            if progress is not None:
                on_progress = progress

                def report_progress(_rows: int) -> None:
                    on_progress(raw.tell(), total)

            try:
                header = next(reader, None)
                if header is None:
                    raise BadCsv(f"{path} is empty: no header row", 0)
                report = self.scan_rows(
                    header,
                    reader,
                    max_positions=max_positions,
                    sample_rows=sample_rows,
                    on_rows=report_progress,
                )
            except csv.Error as exc:
                line = reader.line_num
                raise BadCsv(f"{path}: not valid CSV at line {line}: {exc}", line) from exc
            except UnicodeDecodeError as exc:
                line, offset = _first_bad_utf8(path)
                raise NotUtf8(
                    f"{path} is not UTF-8: invalid byte at offset {offset} (line {line})", line
                ) from exc
            except OSError as exc:
                raise UnreadableFile(f"cannot read {path}: {exc.strerror or exc}") from exc
            if progress is not None:
                progress(total if report.complete else raw.tell(), total)
            return report


def _sniff_delimiter(head: bytes) -> str:
    first = head.split(b"\n", 1)[0]
    counts = {sep: first.count(sep.encode()) for sep in _DELIMITERS}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def _first_bad_utf8(path: Path) -> tuple[int, int]:
    """The line (1-based) and byte offset of the first byte that is not UTF-8."""
    offset = 0
    with path.open("rb") as raw:
        for line_number, line in enumerate(raw, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return line_number, offset + exc.start
            offset += len(line)
    return 0, offset


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
    delimiter: str | None = None,
    progress: Progress | None = None,
) -> PiiReport:
    """Screen a CSV file with the shipped detectors; see ``Screener.scan_csv`` (and its
    errors: ``UnreadableFile``, ``NotUtf8``, ``BadCsv``). ``sample_rows`` stops the scan after
    that many data rows (the report then says ``complete: false``); None reads every row."""
    return _default_screener(country).scan_csv(
        path,
        max_positions=max_positions,
        sample_rows=sample_rows,
        delimiter=delimiter,
        progress=progress,
    )
