"""Governance fixtures: the same tests run on SQLite and on the real PostgreSQL (a fresh
schema per test, dropped after; an unreachable server fails the test, never skips it)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from governance import GovernanceStore, Workflow

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
STEWARD_ROLES = ("steward",)


@dataclass
class Backend:
    """Where a governance database lives, a way to open it, and raw SQL to tamper with it."""

    kind: str
    location: str
    schema: str | None
    sql: Callable[..., list[tuple[Any, ...]]]

    def open(self, *, migrate: bool = True) -> GovernanceStore:
        return GovernanceStore.open(self.location, schema=self.schema, migrate=migrate)

    def cli_args(self) -> list[str]:
        return [self.location, *(["--schema", self.schema] if self.schema else [])]


def _sqlite_backend(path: Path) -> Backend:
    def run(statement: str, *params: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(path)
        try:
            with conn:
                rows = conn.execute(statement.replace("%s", "?"), params).fetchall()
        finally:
            conn.close()
        return rows

    return Backend("sqlite", str(path), None, run)


@pytest.fixture
def pg_backend() -> Iterator[Backend]:
    schema = f"t_gov_{uuid.uuid4().hex[:12]}"

    def run(statement: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(PG_URL, options=f"-csearch_path={schema}") as conn:
            cursor = conn.execute(statement, params)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    yield Backend("postgres", PG_URL, schema, run)
    with psycopg.connect(PG_URL) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")  # type: ignore[arg-type]


@pytest.fixture
def sqlite_backend(tmp_path: Path) -> Backend:
    return _sqlite_backend(tmp_path / "governance.sqlite")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return _sqlite_backend(tmp_path / "governance.sqlite")
    return request.getfixturevalue("pg_backend")  # type: ignore[no-any-return]


@pytest.fixture
def store(backend: Backend) -> Iterator[GovernanceStore]:
    opened = backend.open()
    yield opened
    opened.close()


class Clock:
    """A clock that moves one second per reading (so entries have distinct times)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 14, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


# Who is who: DOUANE (customs) and MEF (finance) keep data; DNUM runs the platform.
PEOPLE = {
    "root": ("DNUM", ["operator"]),
    "amina": ("DOUANE", ["steward"]),
    "samir": ("DOUANE", ["steward"]),
    "karim": ("DOUANE", ["approver"]),
    "nadia": ("DOUANE", ["steward", "approver"]),
    "audrey": ("DOUANE", ["auditor"]),
    "yasmine": ("MEF", ["steward"]),
    "omar": ("MEF", ["approver"]),
}


@pytest.fixture
def flow(store: GovernanceStore) -> Workflow:
    workflow = Workflow(store, clock=Clock())
    workflow.register_user(None, "root", name="Root Operator", agency="DNUM", roles=["operator"])
    for user_id, (agency, roles) in PEOPLE.items():
        if user_id != "root":
            workflow.register_user(
                "root", user_id, name=user_id.title(), agency=agency, roles=roles
            )
    return workflow


def register(flow: Workflow, dataset_id: str = "tariffs", actor: str = "amina") -> None:
    flow.register_dataset(
        actor,
        dataset_id,
        title={"ar": "التعريفة الجمركية", "fr": "Tarif douanier", "en": "Customs tariff"},
        description={"fr": "Droits d'importation par position tarifaire"},
        source="exports/tariffs.csv",
        table_schema={"fields": [{"name": "code", "type": "string"}, {"name": "rate"}]},
        licence="ODbL-1.0",
        update_frequency="yearly",
        tags=["customs", "tariff"],
    )


def classify(flow: Workflow, dataset_id: str = "tariffs", actor: str = "amina", **kw: Any) -> None:
    flow.classify(
        actor,
        dataset_id,
        level=kw.get("level", "PUBLIC"),
        personal_data=kw.get("personal_data", False),
        legal_basis="Loi 31-13 sur le droit d'accès à l'information",
        justification=kw.get("justification", "published tariff, no personal data"),
    )


SHA_A = "a" * 64
SHA_B = "b" * 64
