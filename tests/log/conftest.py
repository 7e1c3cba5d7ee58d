"""Message-log fixtures: the same tests run on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from exchange.log import LogEntry, LogStore, PostgresLogStore, SQLiteLogStore

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


class CountingConnection(sqlite3.Connection):
    """A sqlite3 connection that counts its commits."""

    commits = 0

    def commit(self) -> None:
        type(self).commits += 1
        super().commit()


@dataclass
class Backend:
    """A way to open the same log again and to tamper with it in SQL."""

    kind: str
    open: Callable[[], LogStore]
    sql: Callable[[str, tuple[Any, ...]], None]
    location: str
    name: str


def _sqlite_backend(path: Path) -> Backend:
    def run(statement: str, params: tuple[Any, ...] = ()) -> None:
        conn = sqlite3.connect(path)
        with conn:
            conn.execute(statement.replace("%s", "?").replace("{s}.", ""), params)
        conn.close()

    return Backend("sqlite", lambda: SQLiteLogStore(path), run, str(path), "message_log")


@pytest.fixture
def sqlite_backend(tmp_path: Path) -> Backend:
    return _sqlite_backend(tmp_path / "log.sqlite")


@pytest.fixture
def pg_backend() -> Iterator[Backend]:
    name = f"t_log_{uuid.uuid4().hex[:12]}"

    def run(statement: str, params: tuple[Any, ...] = ()) -> None:
        with psycopg.connect(PG_URL) as conn:
            conn.execute(statement.replace("{s}", name), params)  # type: ignore[arg-type]

    yield Backend("postgres", lambda: PostgresLogStore(PG_URL, name=name), run, PG_URL, name)
    with psycopg.connect(PG_URL) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return _sqlite_backend(tmp_path / "log.sqlite")
    return request.getfixturevalue("pg_backend")  # type: ignore[no-any-return]


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def clock() -> datetime:
    return datetime(2026, 11, 22, 14, 0, 0, 123456, tzinfo=UTC)


def entry(i: int, direction: str = "received") -> LogEntry:
    return LogEntry(
        direction=direction,  # type: ignore[arg-type]
        message_id=f"msg-{i:04d}",
        message_type="customs.declaration",
        sender="ma.gov.douane/declarations",
        recipient="ma.gov.finances/tresor",
        envelope=f'{{"id": "msg-{i:04d}", "payload": "{"x" * (i % 7)}"}}'.encode(),
        reject_code="bad-signature" if direction == "rejected" else None,
    )
