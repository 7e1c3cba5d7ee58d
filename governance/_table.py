"""CSV tables: the one way the platform turns bytes into rows.

PII screening (``governance.pii``), Frictionless validation (``opendata``) and derivations
all read a file through :func:`open_table`, with one declared :class:`Dialect` and never a
guessed one, so each of them sees the same header and the same rows. The platform's dialect,
:data:`RFC4180`, is commas, double quotes (doubled inside a quoted cell), UTF-8 (a byte-order
mark allowed) and a header row; a file written otherwise is read as what it is under that
dialect, and a validator compares its header with the Table Schema's field names
(:func:`other_dialect` says whether another dialect would have matched).

Reading is bounded by :class:`TableLimits`, checked by the reader itself rather than by
``csv.field_size_limit``, which is process-wide (Frictionless raises it to 2 GiB when it is
imported): the file's bytes are counted (a regular file over ``max_bytes`` is refused before
it is read, a stream as soon as it passes it), ``csv.reader`` reads from a stream that hands
it one line at a time and counts the characters of each record (a quoted cell may span lines),
and each row's width is checked, and its cells' length whenever the record is long enough to
hold an oversized cell (when the csv module's process-wide bound is the lower one, a cell over
it is refused the same way). A file that breaks a bound raises a :class:`~governance.TooLarge`
subclass and is not read further, so no file, nor an endless stream such as ``/dev/zero``,
makes a reader hold more than a few records' worth of memory.

Errors: :class:`~governance.BadSource` (cannot be opened, no header, bad quoting),
:class:`~governance.NotUtf8`, and the :class:`~governance.TooLarge` family; see
``governance._errors``.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from governance._errors import (
    BadSource,
    CellTooLarge,
    FileTooLarge,
    InvalidInput,
    LineTooLong,
    NotUtf8,
    TooWide,
)

__all__ = ["RFC4180", "CsvTable", "Dialect", "TableLimits", "open_table", "other_dialect"]

DELIMITERS = (",", ";", "\t", "|")
QUOTE_CHARS = ('"', "'")
_CHUNK = 65_536


@dataclass(frozen=True, slots=True)
class Dialect:
    """How a table's bytes are written: ``delimiter`` (one of ``, ; TAB |``) and
    ``quote_char`` (``"`` or ``'``; doubled inside a quoted cell, no escape character, no
    space skipped after a delimiter). Always UTF-8, with a header row."""

    delimiter: str = ","
    quote_char: str = '"'
    encoding: ClassVar[str] = "utf-8"

    def __post_init__(self) -> None:
        if self.delimiter not in DELIMITERS:
            raise InvalidInput(
                f"the delimiter must be one of {DELIMITERS!r}, not {self.delimiter!r}"
            )
        if self.quote_char not in QUOTE_CHARS:
            raise InvalidInput(
                f"the quote character must be one of {QUOTE_CHARS!r}, not {self.quote_char!r}"
            )

    def as_dict(self) -> dict[str, Any]:
        """The dialect as a Frictionless CSV dialect descriptor (every option explicit, so
        that nothing is left for a reader to sniff)."""
        return {
            "delimiter": self.delimiter,
            "quoteChar": self.quote_char,
            "doubleQuote": True,
            "skipInitialSpace": False,
            "header": True,
        }

    def reader(self, lines: Iterator[str]) -> Iterator[list[str]]:
        """``csv.reader`` over ``lines`` with this dialect, strict about quoting."""
        return csv.reader(
            lines,
            delimiter=self.delimiter,
            quotechar=self.quote_char,
            doublequote=True,
            skipinitialspace=False,
            strict=True,
        )

    def writer(self, sink: Any) -> Any:
        """``csv.writer`` into ``sink`` with this dialect and CRLF line ends (RFC 4180)."""
        return csv.writer(
            sink, delimiter=self.delimiter, quotechar=self.quote_char, lineterminator="\r\n"
        )


RFC4180 = Dialect()


@dataclass(frozen=True, slots=True)
class TableLimits:
    """Bounds on what reading one table may take: ``max_bytes`` of the file, ``max_line``
    characters in one record (line breaks included, all the physical lines of a record whose
    quoted cells span several), ``max_cell`` characters in one cell and ``max_columns``
    columns in the header or any row."""

    max_bytes: int = 2 << 30
    max_line: int = 1 << 20
    max_cell: int = 1 << 17
    max_columns: int = 1024

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(f"{name} must be a positive whole number, not {value!r}")


class _CountingReader(io.RawIOBase):
    """A raw binary reader that counts (and optionally hashes) the bytes read through it and
    refuses to read past ``limit``."""

    def __init__(self, raw: io.BufferedReader, limit: int, name: str, *, digest: bool) -> None:
        super().__init__()
        self._raw = raw
        self._limit = limit
        self._name = name
        self.count = 0
        self.digest = hashlib.sha256() if digest else None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._raw.readinto(buffer) or 0
        self.count += n
        if self.count > self._limit:
            raise FileTooLarge(f"{self._name} is larger than {self._limit:,} bytes")
        if n and self.digest is not None:
            self.digest.update(memoryview(buffer)[:n])
        return n


class _Lines:
    """The physical lines of a text stream for ``csv.reader``, each read with a bound, and
    the characters of the current record counted (``record`` is reset by the row loop)."""

    __slots__ = ("first", "iterator", "number", "record")

    def __init__(self, text: io.TextIOWrapper, limit: int, name: str) -> None:
        self.number = 0
        self.record = 0
        self.first = ""
        self.iterator = self._lines(text.readline, limit, name)

    def _lines(self, readline: Callable[[int], str], limit: int, name: str) -> Iterator[str]:
        # a generator: resuming one costs less than a call to __next__, once per line
        while line := readline(limit + 1):
            self.number += 1
            self.record += len(line)
            if self.record > limit:
                raise LineTooLong(
                    f"{name}, line {self.number}: a record longer than {limit:,} characters",
                    self.number,
                )
            if self.number == 1:
                self.first = line
            yield line


class CsvTable:
    """An open CSV file read under a dialect and limits: ``header`` (read on opening), then
    :meth:`rows`, once, in order. ``bytes_read`` and ``size`` (None for a stream) measure
    progress; :meth:`sha256` hashes every byte of the file when it was opened with
    ``digest=True``."""

    def __init__(  # noqa: PLR0913 - keyword-only after the file
        self,
        path: Path,
        raw: io.BufferedReader,
        *,
        name: str,
        dialect: Dialect,
        limits: TableLimits,
        digest: bool,
    ) -> None:
        self.name = name
        self.dialect = dialect
        self.limits = limits
        self._path = path
        try:
            info = os.fstat(raw.fileno())
        except OSError as exc:
            raise BadSource(f"cannot read {name}: {exc.strerror or exc}") from exc
        regular = stat.S_ISREG(info.st_mode)
        self.size: int | None = info.st_size if regular else None
        if regular and info.st_size > limits.max_bytes:
            raise FileTooLarge(
                f"{name} is {info.st_size:,} bytes: more than the {limits.max_bytes:,} allowed"
            )
        self._regular = regular
        self._counting = _CountingReader(raw, limits.max_bytes, name, digest=digest)
        text = io.TextIOWrapper(
            io.BufferedReader(self._counting, _CHUNK), encoding="utf-8-sig", newline=""
        )
        self._lines = _Lines(text, limits.max_line, name)
        self._reader = dialect.reader(self._lines.iterator)
        self.header: list[str] = self._header()

    @property
    def bytes_read(self) -> int:
        return self._counting.count

    @property
    def line(self) -> int:
        """The number of physical lines read so far."""
        return self._lines.number

    @property
    def first_line(self) -> str:
        """The file's first physical line as read (without the byte-order mark)."""
        return self._lines.first

    def _header(self) -> list[str]:
        with self._reading():
            header = next(self._reader, None)
        if not header:
            raise BadSource(f"{self.name} has no header row", self.line or None)
        self._check_row(header)
        self._lines.record = 0
        return header

    def rows(self) -> Iterator[list[str]]:
        """The data rows after the header (a blank line is an empty row). Raises the
        errors of the module docstring when a row cannot be read or breaks a bound."""
        reader = self._reader
        check = self._check_row
        lines = self._lines
        max_cell = self.limits.max_cell
        max_columns = self.limits.max_columns
        with self._reading():
            for row in reader:
                if lines.record > max_cell or len(row) > max_columns:
                    check(row)
                lines.record = 0
                yield row

    def _check_row(self, row: list[str]) -> None:
        if len(row) > self.limits.max_columns:
            raise TooWide(
                f"{self.name}, line {self.line}: {len(row):,} columns, more than the "
                f"{self.limits.max_columns:,} allowed",
                self.line,
            )
        if max(map(len, row), default=0) > self.limits.max_cell:
            raise CellTooLarge(
                f"{self.name}, line {self.line}: a cell longer than "
                f"{self.limits.max_cell:,} characters",
                self.line,
            )

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Library errors raised while reading, as ours."""
        try:
            yield
        except csv.Error as exc:
            line = self.line
            if "field limit" in str(exc):  # the csv module's own bound, lower than ours
                raise CellTooLarge(
                    f"{self.name}, line {line}: a cell longer than {csv.field_size_limit():,} "
                    "characters",
                    line,
                ) from exc
            raise BadSource(f"{self.name}, line {line}: not valid CSV: {exc}", line) from exc
        except UnicodeDecodeError as exc:
            line, offset = self._first_bad_utf8()
            where = f"at byte offset {offset} (line {line})" if offset is not None else ""
            raise NotUtf8(
                f"{self.name} is not UTF-8: an invalid byte {where or f'near line {line}'}", line
            ) from exc
        except OSError as exc:
            raise BadSource(f"cannot read {self.name}: {exc.strerror or exc}", self.line) from exc

    def _first_bad_utf8(self) -> tuple[int, int | None]:
        """The line (1-based) and byte offset of the first byte that is not UTF-8, read again
        in chunks; for a stream, which cannot be read again, the line reached."""
        if not self._regular:
            return self._lines.number + 1, None
        lines = 1
        offset = 0
        pending = b""
        try:
            with self._path.open("rb") as raw:
                while True:
                    chunk = raw.read(_CHUNK)
                    data = pending + chunk
                    try:
                        _, used = codecs.utf_8_decode(data, "strict", not chunk)
                    except UnicodeDecodeError as exc:
                        return lines + data.count(b"\n", 0, exc.start), offset + exc.start
                    lines += data.count(b"\n", 0, used)
                    offset += used
                    pending = data[used:]
                    if not chunk:
                        return lines, None
        except OSError:
            return self._lines.number + 1, None

    def sha256(self) -> str:
        """The SHA-256 (hex) of every byte of the file, reading what is left."""
        digest = self._counting.digest
        if digest is None:
            raise ValueError("the table was opened without digest=True")
        with self._reading():
            while self._counting.read(_CHUNK):
                pass
        return digest.hexdigest()


@contextmanager
def open_table(
    path: str | os.PathLike[str],
    dialect: Dialect = RFC4180,
    limits: TableLimits | None = None,
    *,
    name: str | None = None,
    digest: bool = False,
) -> Iterator[CsvTable]:
    """Open ``path`` as a CSV table of ``dialect`` within ``limits`` (the defaults of
    :class:`TableLimits` when None) and read its header. ``name`` is how messages name the
    file (its file name by default: never a folder of the server).

    Raises :class:`~governance.BadSource` (cannot be opened, no header row),
    :class:`~governance.NotUtf8`, or a :class:`~governance.TooLarge` subclass."""
    source = Path(path)
    shown = name or source.name or str(source)
    try:
        raw = source.open("rb")
    except OSError as exc:
        raise BadSource(f"cannot read {shown}: {exc.strerror or exc}") from exc
    with raw:
        yield CsvTable(
            source, raw, name=shown, dialect=dialect, limits=limits or TableLimits(), digest=digest
        )


def other_dialect(
    first_line: str, names: Sequence[str], declared: Dialect = RFC4180
) -> Dialect | None:
    """Another known dialect under which ``first_line`` reads exactly as ``names`` (when a
    file's header, read with ``declared``, is not its schema's field names); else None."""
    wanted = list(names)
    for delimiter in DELIMITERS:
        if delimiter == declared.delimiter:
            continue
        dialect = Dialect(delimiter, declared.quote_char)
        try:
            cells = next(dialect.reader(iter([first_line])), None)
        except csv.Error:
            continue
        if cells == wanted:
            return dialect
    return None
