"""The alembic migrations: fresh databases reach head, re-running is a no-op, and the tables
they build are the ones the code queries."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from governance import GovernanceStore, StoreError, Workflow, head_revision
from governance._db import metadata
from tests.governance.conftest import Backend

TABLES = {
    "users",
    "datasets",
    "reviews",
    "review_findings",
    "audit_log",
    "audit_head",
    "api_tokens",
}


def test_fresh_database_migrates_to_head(backend):
    """A new database gets every table and the head revision."""
    store = backend.open()
    try:
        assert store.revision() == head_revision() == "0005"
        names = set(sa.inspect(store.engine).get_table_names())
        assert names >= TABLES | {"alembic_version"}
    finally:
        store.close()


def test_rerunning_migrations_is_a_no_op(backend):
    """Opening (migrating) again keeps the revision, the data and the audit chain."""
    store = backend.open()
    flow = Workflow(store)
    flow.register_user(None, "root", name="Root", agency="DNUM", roles=["operator"])
    head = flow.audit.verify()
    store.migrate(backend.schema)
    store.close()
    again = backend.open()
    try:
        assert again.revision() == head_revision()
        assert Workflow(again).user("root").agency == "DNUM"
        assert Workflow(again).audit.verify() == head
        assert backend.sql("SELECT count(*) FROM alembic_version")[0][0] == 1
    finally:
        again.close()


def test_migrations_build_what_the_code_queries(backend):
    """Alembic finds no difference between the migrated database and the code's tables."""
    store = backend.open()
    try:
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
    finally:
        store.close()


def test_postgres_schema_holds_the_tables(pg_backend):
    """On PostgreSQL the tables live in the schema asked for, not in public."""
    pg_backend.open().close()
    rows = pg_backend.sql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
        pg_backend.schema,
    )
    assert {r[0] for r in rows} >= TABLES


def test_read_only_open_refuses_a_missing_file(tmp_path):
    """Opening without migrating never creates a SQLite file."""
    path = tmp_path / "absent.sqlite"
    with pytest.raises(StoreError, match="no governance database"):
        GovernanceStore.open(str(path), migrate=False)
    assert not path.exists()


def test_read_only_open_refuses_an_unmigrated_database(tmp_path):
    """A database that is not at head is refused when migration is off."""
    path = tmp_path / "other.sqlite"
    sa_engine = sa.create_engine(f"sqlite:///{path}")
    with sa_engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    sa_engine.dispose()
    with pytest.raises(StoreError, match="not a Tabadul governance database") as caught:
        GovernanceStore.open(str(path), migrate=False)
    assert caught.value.code == "store"


def test_bad_schema_name_is_refused():
    """A schema name that would need quoting is refused before any SQL."""
    with pytest.raises(StoreError, match="plain schema name"):
        GovernanceStore.open("postgresql://postgres@127.0.0.1:5432/test", schema='x"; DROP')


@pytest.mark.postgres
def test_unreachable_postgres_is_a_store_error():
    """A server that does not answer gives a StoreError naming the failure."""
    with pytest.raises(StoreError, match="failed to migrate"):
        GovernanceStore.open("postgresql://postgres@127.0.0.1:1/none")


def test_sqlite_backend_fixture_is_a_backend(sqlite_backend):
    """The SQLite fixture opens a real file database that the raw SQL helper can read."""
    assert isinstance(sqlite_backend, Backend)
    sqlite_backend.open().close()
    assert sqlite_backend.sql("SELECT seq FROM audit_head") == [(0,)]
