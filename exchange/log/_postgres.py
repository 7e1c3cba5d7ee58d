"""The message log in PostgreSQL (psycopg 3, imported here only, and lazily): one schema
per log, holding the ``records``, ``nodes`` and ``heads`` tables. A batch is written with
``COPY`` inside one transaction; with the server's default ``synchronous_commit = on`` it is
durable when :meth:`PostgresLogStore.append` returns."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from exchange._errors import LogError
from exchange.log._records import SignedTreeHead
from exchange.log._store import COLUMNS as _COLUMNS
from exchange.log._store import (
    DEFAULT_NAME,
    Node,
    NodeKey,
    StoredRecord,
    record_row,
    stored_from_row,
)

if TYPE_CHECKING:
    import psycopg

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")

_SCHEMA = (
    "CREATE SCHEMA IF NOT EXISTS {s}",
    """CREATE TABLE IF NOT EXISTS {s}.records (
        seq bigint PRIMARY KEY,
        direction text NOT NULL,
        at text NOT NULL,
        message_id text NOT NULL,
        message_type text NOT NULL,
        sender text NOT NULL,
        recipient text NOT NULL,
        reject_code text,
        envelope_sha256 text NOT NULL,
        envelope bytea NOT NULL,
        leaf_hash bytea NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS records_message_id ON {s}.records (message_id)",
    """CREATE TABLE IF NOT EXISTS {s}.nodes (
        level smallint NOT NULL,
        idx bigint NOT NULL,
        hash bytea NOT NULL,
        PRIMARY KEY (level, idx)
    )""",
    """CREATE TABLE IF NOT EXISTS {s}.heads (
        size bigint PRIMARY KEY,
        root bytea NOT NULL,
        at text NOT NULL,
        log_id text NOT NULL,
        signature bytea NOT NULL
    )""",
)


class PostgresLogStore:
    """A :class:`~exchange.log.LogStore` in the schema ``name`` of the PostgreSQL database
    at ``url``. ``name`` is a lowercase SQL identifier. ``create=False`` refuses a schema
    without a message log. Use from one thread. Every failure raises ``LogError``."""

    def __init__(self, url: str, *, name: str = DEFAULT_NAME, create: bool = True) -> None:
        if not _NAME.match(name):
            raise LogError(f"log name {name!r} is not a lowercase SQL identifier")
        self.name = name
        # psycopg is imported only when a PostgreSQL log is opened, so the core does not
        # load a database driver it does not use.
        import psycopg  # noqa: PLC0415
        from psycopg import sql  # noqa: PLC0415

        self._psycopg = psycopg
        self._sql = sql
        self._schema = sql.Identifier(name)
        with self._errors("cannot open the message log"):
            self._conn: psycopg.Connection[Any] = psycopg.connect(url, connect_timeout=10)
        with self._errors("cannot open the message log"):
            if create:
                for statement in _SCHEMA:
                    self._conn.execute(sql.SQL(statement).format(s=self._schema))
                self._conn.commit()
            else:
                found = self._conn.execute(
                    "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s "
                    "AND table_name IN ('records', 'nodes', 'heads')",
                    (name,),
                ).fetchone()
                self._conn.rollback()
                if found is None or found[0] != 3:
                    self._conn.close()
                    raise LogError(f"the database holds no message log named {name!r}")

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except self._psycopg.Error as exc:
            raise LogError(f"{what}: {exc}".strip()) from exc

    def _q(self, statement: str) -> Any:
        return self._sql.SQL(statement).format(s=self._schema)

    def append(
        self,
        records: Sequence[StoredRecord],
        nodes: Sequence[Node],
        head: SignedTreeHead | None = None,
    ) -> None:
        """Write the batch with ``COPY`` in one transaction and commit it."""
        conn = self._conn
        with self._errors("cannot append to the message log"):
            try:
                with conn.cursor() as cur:
                    if records:
                        with cur.copy(self._q(f"COPY {{s}}.records ({_COLUMNS}) FROM STDIN")) as cp:
                            for stored in records:
                                cp.write_row(record_row(stored))
                    if nodes:
                        with cur.copy(
                            self._q("COPY {s}.nodes (level, idx, hash) FROM STDIN")
                        ) as cp:
                            for node in nodes:
                                cp.write_row(node)
                    if head is not None:
                        cur.execute(
                            self._q(
                                "INSERT INTO {s}.heads (size, root, at, log_id, signature) "
                                "VALUES (%s, %s, %s, %s, %s)"
                            ),
                            (
                                head.size,
                                head.root_hash,
                                head.timestamp,
                                head.log_id,
                                head.signature,
                            ),
                        )
                conn.commit()
            except BaseException:
                conn.rollback()
                raise

    def _select(self, where: str, params: Sequence[Any]) -> list[StoredRecord]:
        with self._errors("cannot read the message log"):
            rows = self._conn.execute(
                self._q(f"SELECT {_COLUMNS} FROM {{s}}.records {where}"),  # noqa: S608 - constant SQL
                params,
            ).fetchall()
            self._conn.rollback()
        return [stored_from_row(row) for row in rows]

    def read_range(self, start: int, stop: int) -> list[StoredRecord]:
        return self._select("WHERE seq >= %s AND seq < %s ORDER BY seq", (start, stop))

    def scan(self, batch: int = 2048) -> Iterator[list[StoredRecord]]:
        last: int | None = None
        while True:
            if last is None:
                chunk = self._select("ORDER BY seq LIMIT %s", (batch,))
            else:
                chunk = self._select("WHERE seq > %s ORDER BY seq LIMIT %s", (last, batch))
            if not chunk:
                return
            yield chunk
            last = chunk[-1].record.seq

    def read_by_message_id(self, message_id: str) -> list[StoredRecord]:
        return self._select("WHERE message_id = %s ORDER BY seq", (message_id,))

    def leaf_hashes(self) -> Iterator[bytes]:
        with self._errors("cannot read the message log"):
            rows = self._conn.execute(
                self._q("SELECT leaf_hash FROM {s}.records ORDER BY seq")
            ).fetchall()
            self._conn.rollback()
        for (value,) in rows:
            yield bytes(value)

    def read_nodes(self, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        with self._errors("cannot read the message log"):
            rows = self._conn.execute(
                self._q(
                    "SELECT n.level, n.idx, n.hash FROM {s}.nodes n "
                    "JOIN unnest(%s::smallint[], %s::bigint[]) AS k(level, idx) "
                    "ON n.level = k.level AND n.idx = k.idx"
                ),
                ([k[0] for k in wanted], [k[1] for k in wanted]),
            ).fetchall()
            self._conn.rollback()
        return {(int(r[0]), int(r[1])): bytes(r[2]) for r in rows}

    def read_heads(self) -> list[SignedTreeHead]:
        with self._errors("cannot read the message log"):
            rows = self._conn.execute(
                self._q("SELECT size, root, at, log_id, signature FROM {s}.heads ORDER BY size")
            ).fetchall()
            self._conn.rollback()
        return [SignedTreeHead(int(r[0]), bytes(r[1]), r[2], r[3], bytes(r[4])) for r in rows]

    def count(self) -> int:
        with self._errors("cannot read the message log"):
            row = self._conn.execute(self._q("SELECT count(*) FROM {s}.records")).fetchone()
            self._conn.rollback()
        return int(row[0]) if row else 0

    def close(self) -> None:
        with self._errors("cannot close the message log"):
            self._conn.close()
