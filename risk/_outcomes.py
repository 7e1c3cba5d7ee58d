"""What the risk service keeps: each declaration it assessed (its rows, the model version,
the score and lane) and each inspection result customs sent back. A SQLite file; every write
is one transaction. An inspection result is on disk (fsync) before its message is
acknowledged; an assessment is committed without waiting for the disk (SQLite's WAL with
``synchronous=NORMAL``: a crash of the process loses nothing, a power cut may lose the last
ones, which the connector's message log still holds, declaration by declaration), since it
is on the path of every declaration.

The labelled rows for retraining are the rows of inspected declarations: an item is a fraud
when the inspection found fraud on its line, or on the whole declaration (no lines named).
Repeats are harmless: a declaration assessed again keeps its latest assessment, an
inspection sent again replaces the earlier one.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from risk._declarations import ID, ITEM_COLUMNS
from risk._errors import OutcomesUnreadable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS assessments (
    declaration_number TEXT PRIMARY KEY,
    assessed_at TEXT NOT NULL,
    model_version TEXT NOT NULL,
    score REAL NOT NULL,
    lane TEXT NOT NULL,
    cells TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS inspections (
    declaration_number TEXT PRIMARY KEY,
    inspected_at TEXT NOT NULL,
    fraud_found INTEGER NOT NULL,
    lines TEXT NOT NULL,
    additional_duties TEXT NOT NULL
);
"""


class Outcomes:
    """The assessments and inspection results of one risk service. Thread-safe."""

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise OutcomesUnreadable(f"cannot open the outcome database {path}: {exc}") from exc
        self._lock = threading.Lock()
        self._synchronous = ""

    def assessed(self, payload: Mapping[str, Any], cells: Mapping[str, Sequence[str]]) -> None:
        """Keep a ``customs.risk-assessed`` payload and the rows it scored."""
        row = (
            payload["declaration_number"],
            payload["assessed_at"],
            payload["model"]["version"],
            payload["score"],
            payload["lane"],
            json.dumps({k: list(v) for k, v in cells.items()}),
        )
        self._replace("assessments", row, synchronous="NORMAL")

    def inspected(self, result: Mapping[str, Any]) -> None:
        """Keep a ``customs.inspection-result`` payload (one declaration may not have been
        assessed here: it is kept all the same, and used once it is)."""
        lines = sorted({int(f["line"]) for f in result["findings"]})
        row = (
            result["declaration_number"],
            result["inspected_at"],
            int(bool(result["fraud_found"])),
            json.dumps(lines),
            json.dumps(result["additional_duties"]),
        )
        self._replace("inspections", row, synchronous="FULL")

    def _replace(self, table: str, row: tuple[Any, ...], *, synchronous: str) -> None:
        """Insert ``row`` into ``table`` (replacing the declaration's earlier row), committed
        with SQLite's ``synchronous`` level (FULL: on disk before returning)."""
        marks = ", ".join("?" * len(row))
        with self._lock:
            if synchronous != self._synchronous:  # a PRAGMA costs as much as the insert
                self._db.execute(f"PRAGMA synchronous={synchronous}")
                self._synchronous = synchronous
            self._db.execute(f"INSERT OR REPLACE INTO {table} VALUES ({marks})", row)  # noqa: S608 - our table names

    def labelled(self, label: str, *, version: str | None = None) -> pd.DataFrame:
        """The rows of the inspected declarations with ``label`` ("1" fraud, "0" not), as
        text cells in :data:`~risk._declarations.ITEM_COLUMNS`; only those a model
        ``version`` assessed when given."""
        query = (
            "SELECT a.cells, i.fraud_found, i.lines FROM assessments a JOIN inspections i "
            "USING (declaration_number)"
        )
        arguments: tuple[str, ...] = ()
        if version is not None:
            query += " WHERE a.model_version = ?"
            arguments = (version,)
        with self._lock:
            found = self._db.execute(query + " ORDER BY a.declaration_number", arguments)
            rows = found.fetchall()
        columns: dict[str, list[str]] = {name: [] for name in (*ITEM_COLUMNS, label)}
        for cells_json, fraud_found, lines_json in rows:
            cells = json.loads(cells_json)
            lines = set(json.loads(lines_json))
            for position, identifier in enumerate(cells[ID]):
                for name in ITEM_COLUMNS:
                    columns[name].append(cells[name][position])
                line = int(identifier.rsplit("/", 1)[1])
                fraud = fraud_found and (not lines or line in lines)
                columns[label].append("1" if fraud else "0")
        return pd.DataFrame(columns, dtype=str)

    def counts(self) -> dict[str, int]:
        """How many declarations were assessed, inspected (of those), and found fraudulent,
        and how many inspection results name a declaration not assessed here."""
        with self._lock:
            assessed, inspected, frauds, unmatched = self._db.execute(
                "SELECT (SELECT count(*) FROM assessments),"
                " (SELECT count(*) FROM inspections JOIN assessments USING (declaration_number)),"
                " (SELECT count(*) FROM inspections JOIN assessments USING (declaration_number)"
                "  WHERE fraud_found = 1),"
                " (SELECT count(*) FROM inspections WHERE declaration_number NOT IN"
                "  (SELECT declaration_number FROM assessments))"
            ).fetchone()
        return {
            "assessed": assessed,
            "inspected": inspected,
            "frauds": frauds,
            "unmatched": unmatched,
        }

    def lanes(self) -> dict[str, int]:
        """How many declarations were assessed in each lane."""
        with self._lock:
            found = self._db.execute("SELECT lane, count(*) FROM assessments GROUP BY lane")
            return dict(found.fetchall())

    def close(self) -> None:
        with self._lock:
            self._db.close()
