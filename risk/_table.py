"""Reading the CSV files a model is trained on or scores: text cells, a header row, UTF-8.

The one place risk/ touches files of data; everything after works on a ``pandas.DataFrame``
of strings (an empty cell is ``""``), so type inference sees exactly what the file held.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from risk._errors import BadTable, TableTooLarge


@dataclass(frozen=True, slots=True)
class Limits:
    """How large a file may be read: ``max_bytes`` of it, ``max_columns`` in its header
    (the whole file is held in memory while it is read, about three times its size)."""

    max_bytes: int = 1 << 30
    max_columns: int = 1024


@dataclass(frozen=True, slots=True)
class Source:
    """What was read: the rows (text), and the SHA-256 and row count of each file."""

    frame: pd.DataFrame
    digests: tuple[tuple[str, str, int], ...]  # (file name, sha256 hex, rows)

    @property
    def sha256(self) -> str:
        """One digest over the files' digests, in the order given."""
        joined = "\n".join(digest for _, digest, _ in self.digests)
        return hashlib.sha256(joined.encode("ascii")).hexdigest()

    def as_training(self) -> dict[str, Any]:
        """What a model version records of the files it was trained on."""
        return {
            "sha256": self.sha256,
            "rows": len(self.frame),
            "files": [{"name": n, "sha256": d, "rows": r} for n, d, r in self.digests],
        }


def read_tables(paths: Sequence[Path], limits: Limits | None = None) -> Source:
    """Read one or more CSV files with the same columns into one frame, in the order given;
    the frame's index counts each file's rows (the line of a row is its index + 2). Raises
    :class:`BadTable` for a file that cannot be read, is not UTF-8 CSV, is empty, has no
    rows, names a column twice or has other columns than the first file, and
    :class:`TableTooLarge` past ``limits``."""
    if not paths:
        raise BadTable("no file given")
    bounds = limits or Limits()
    frames, digests = [], []
    columns: list[str] | None = None
    for path in paths:
        frame, digest = _read_one(path, bounds)
        if columns is None:
            columns = list(frame.columns)
        elif sorted(frame.columns) != sorted(columns):
            raise BadTable(
                f"{path.name} has other columns than {paths[0].name}",
                file=str(path),
                missing=sorted(set(columns) - set(frame.columns)),
                unknown=sorted(set(frame.columns) - set(columns)),
            )
        frames.append(frame[columns])
        digests.append((path.name, digest, len(frame)))
    frame = frames[0] if len(frames) == 1 else pd.concat(frames)
    return Source(frame, tuple(digests))


def _read_one(path: Path, limits: Limits) -> tuple[pd.DataFrame, str]:
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise TableTooLarge(
                f"{path.name} has {size:,} bytes, over the limit of {limits.max_bytes:,}",
                file=str(path),
                limit=limits.max_bytes,
            )
        data = path.read_bytes()
    except IsADirectoryError as exc:
        raise BadTable(f"{path} is a folder, not a CSV file", file=str(path)) from exc
    except OSError as exc:
        raise BadTable(f"cannot read {path}: {exc.strerror}", file=str(path)) from exc
    if not data.strip():
        raise BadTable(f"{path.name} is empty", file=str(path))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadTable(
            f"{path.name} is not UTF-8 (byte offset {exc.start})", file=str(path)
        ) from exc
    header = next(csv.reader([text.split("\n", 1)[0]]), [])
    if len(header) > limits.max_columns:
        raise TableTooLarge(
            f"{path.name} has {len(header):,} columns, over the limit of {limits.max_columns:,}",
            file=str(path),
            limit=limits.max_columns,
        )
    names = [name.strip() for name in header]
    if not any(names):
        raise BadTable(f"{path.name} has no header row", file=str(path))
    twice = sorted(name for name, count in Counter(names).items() if count > 1)
    if twice or "" in names:
        raise BadTable(
            f"{path.name} names a column twice or leaves one unnamed: {twice or ['']}",
            file=str(path),
        )
    try:
        frame = pd.read_csv(
            io.StringIO(text), dtype=str, keep_default_na=False, na_values=[], header=0
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise BadTable(f"{path.name} is not a CSV table: {exc}", file=str(path)) from exc
    if not isinstance(frame.index, pd.RangeIndex):  # pandas took the extra cells as an index
        raise BadTable(
            f"{path.name}: its rows hold more cells than its header names", file=str(path)
        )
    frame.columns = names
    if frame.empty:
        raise BadTable(f"{path.name} has a header but no rows", file=str(path))
    frame = frame.fillna("").apply(lambda column: column.str.strip())  # a short row: empty
    return frame, hashlib.sha256(data).hexdigest()
