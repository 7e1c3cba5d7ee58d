"""The message log in a SQLite file (stdlib ``sqlite3``): WAL journal, ``synchronous=FULL``,
so a batch is on disk when :meth:`SQLiteLogStore.append` returns."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from exchange._errors import LogError
from exchange.log._records import SignedTreeHead
from exchange.log._store import COLUMNS as _COLUMNS
from exchange.log._store import Node, NodeKey, StoredRecord, record_row, stored_from_row

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS records (
        seq INTEGER PRIMARY KEY,
        direction TEXT NOT NULL,
        at TEXT NOT NULL,
        message_id TEXT NOT NULL,
        message_type TEXT NOT NULL,
        sender TEXT NOT NULL,
        recipient TEXT NOT NULL,
        reject_code TEXT,
        envelope_sha256 TEXT NOT NULL,
        envelope BLOB NOT NULL,
        leaf_hash BLOB NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS records_message_id ON records (message_id)",
    """CREATE TABLE IF NOT EXISTS nodes (
        level INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        hash BLOB NOT NULL,
        PRIMARY KEY (level, idx)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS heads (
        size INTEGER PRIMARY KEY,
        root BLOB NOT NULL,
        at TEXT NOT NULL,
        log_id TEXT NOT NULL,
        signature BLOB NOT NULL
    )""",
)


class SQLiteLogStore:
    """A :class:`~exchange.log.LogStore` in the SQLite file at ``path``.

    ``create=False`` opens an existing log read-only (to verify it or prove a message): a
    path that does not exist, is not a SQLite database or holds no message log is refused,
    and nothing is ever written to it. ``factory`` is passed to :func:`sqlite3.connect`
    (tests count commits with it). Not thread-safe: callers on several threads serialise
    their calls (the connector holds a lock); the connection may move between threads.
    Every failure raises ``LogError``.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        create: bool = True,
        factory: type[sqlite3.Connection] = sqlite3.Connection,
    ) -> None:
        self.path = Path(path)
        if create:
            with self._errors(f"cannot open the message log {self.path}"):
                self._conn = sqlite3.connect(self.path, factory=factory, check_same_thread=False)
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=FULL")
                for statement in _SCHEMA:
                    self._conn.execute(statement)
                self._conn.commit()
            return
        if not self.path.is_file():
            raise LogError(f"no message log at {self.path}")
        # Read-only, so that an empty file or another application's database stays as it was.
        uri = self.path.resolve().as_uri() + "?mode=ro"
        with self._errors(f"cannot open the message log {self.path}"):
            self._conn = sqlite3.connect(uri, uri=True, factory=factory, check_same_thread=False)
            try:
                found = self._conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                    "AND name IN ('records', 'nodes', 'heads')"
                ).fetchone()[0]
            except sqlite3.Error:
                self._conn.close()
                raise
        if found != 3:
            self._conn.close()
            raise LogError(f"{self.path} does not hold a message log")

    @staticmethod
    @contextmanager
    def _errors(what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise LogError(f"{what}: {exc}") from exc

    def append(
        self,
        records: Sequence[StoredRecord],
        nodes: Sequence[Node],
        head: SignedTreeHead | None = None,
    ) -> None:
        """Write the batch in one transaction and commit it (``synchronous=FULL``)."""
        conn = self._conn
        with self._errors("cannot append to the message log"):
            try:
                conn.executemany(
                    f"INSERT INTO records ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608 - constant column list
                    map(record_row, records),
                )
                conn.executemany("INSERT INTO nodes (level, idx, hash) VALUES (?,?,?)", nodes)
                if head is not None:
                    conn.execute(
                        "INSERT INTO heads (size, root, at, log_id, signature) VALUES (?,?,?,?,?)",
                        (head.size, head.root_hash, head.timestamp, head.log_id, head.signature),
                    )
                conn.commit()
            except BaseException:
                conn.rollback()
                raise

    def read_range(self, start: int, stop: int) -> list[StoredRecord]:
        with self._errors("cannot read the message log"):
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM records WHERE seq >= ? AND seq < ? ORDER BY seq",  # noqa: S608
                (start, stop),
            ).fetchall()
        return [stored_from_row(row) for row in rows]

    def scan(self, batch: int = 2048) -> Iterator[list[StoredRecord]]:
        last: int | None = None
        while True:
            with self._errors("cannot read the message log"):
                if last is None:
                    rows = self._conn.execute(
                        f"SELECT {_COLUMNS} FROM records ORDER BY seq LIMIT ?",  # noqa: S608
                        (batch,),
                    ).fetchall()
                else:
                    rows = self._conn.execute(
                        f"SELECT {_COLUMNS} FROM records WHERE seq > ? ORDER BY seq LIMIT ?",  # noqa: S608
                        (last, batch),
                    ).fetchall()
            if not rows:
                return
            yield [stored_from_row(row) for row in rows]
            last = rows[-1][0]

    def read_by_message_id(self, message_id: str) -> list[StoredRecord]:
        with self._errors("cannot read the message log"):
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM records WHERE message_id = ? ORDER BY seq",  # noqa: S608
                (message_id,),
            ).fetchall()
        return [stored_from_row(row) for row in rows]

    def leaf_hashes(self) -> Iterator[bytes]:
        with self._errors("cannot read the message log"):
            cursor = self._conn.execute("SELECT leaf_hash FROM records ORDER BY seq")
            while rows := cursor.fetchmany(4096):
                for (value,) in rows:
                    yield bytes(value)

    def read_nodes(self, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        out: dict[NodeKey, bytes] = {}
        with self._errors("cannot read the message log"):
            for level, idx in set(keys):
                row = self._conn.execute(
                    "SELECT hash FROM nodes WHERE level = ? AND idx = ?", (level, idx)
                ).fetchone()
                if row is not None:
                    out[level, idx] = bytes(row[0])
        return out

    def read_heads(self) -> list[SignedTreeHead]:
        with self._errors("cannot read the message log"):
            rows = self._conn.execute(
                "SELECT size, root, at, log_id, signature FROM heads ORDER BY size"
            ).fetchall()
        return [SignedTreeHead(r[0], bytes(r[1]), r[2], r[3], bytes(r[4])) for r in rows]

    def count(self) -> int:
        with self._errors("cannot read the message log"):
            return int(self._conn.execute("SELECT count(*) FROM records").fetchone()[0])

    def close(self) -> None:
        with self._errors("cannot close the message log"):
            self._conn.close()
