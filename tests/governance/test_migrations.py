"""The alembic migrations: fresh databases reach head, re-running is a no-op, and the tables
they build are the ones the code queries."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import governance
from governance import GovernanceStore, StoreError, Workflow, head_revision
from governance import _db as governance_db
from governance._db import metadata
from tests.governance.conftest import Backend

VERSIONS = Path(governance.__file__).parent / "migrations" / "versions"
# the revisions form one chain, numbered in order; the newest file is the head
LATEST = max(p.name[:4] for p in VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))

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
        assert store.revision() == head_revision() == LATEST
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


def test_grants_made_before_purposes_keep_working(backend):
    """A grant stored at revision 0004 (no purpose) becomes a grant for the unspecified
    purpose, with no legal basis and no end, and subscriptions gain the same terms."""
    from alembic import command  # noqa: PLC0415 - only this test walks the revisions

    from governance._db import alembic_config  # noqa: PLC0415

    store = backend.open()
    config = alembic_config()
    with store.transaction("downgrade") as conn:
        if backend.schema:
            conn.execute(sa.text(f'SET search_path TO "{backend.schema}"'))
        config.attributes["connection"] = conn
        command.downgrade(config, "0004")
        conn.execute(sa.text("INSERT INTO bus_members VALUES ('MA/GOV/MEF', 'MEF', 'x')"))
        for name in ("MA/GOV/MEF/TAX", "MA/GOV/MEF/CUSTOMS"):
            conn.execute(
                sa.text("INSERT INTO bus_subsystems VALUES (:s, 'MA/GOV/MEF', 'x')"), {"s": name}
            )
        conn.execute(
            sa.text(
                "INSERT INTO bus_grants VALUES ('MA/GOV/MEF/TAX', 'a.b.request', "
                "'MA/GOV/MEF/CUSTOMS')"
            )
        )
        conn.execute(sa.text("INSERT INTO bus_subscriptions VALUES ('MA/GOV/MEF/TAX', 'a.b')"))
    store.migrate(backend.schema)
    try:
        grants = backend.sql("SELECT sender, purpose, legal_basis, expires FROM bus_send_grants")
        assert grants == [("MA/GOV/MEF/TAX", "unspecified", "", None)]
        assert backend.sql("SELECT purpose FROM bus_subscriptions") == [("unspecified",)]
    finally:
        store.close()


def _foreign(path):
    """Another application's SQLite database, in rollback-journal mode."""
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE notes (body TEXT)"))
        conn.execute(sa.text("INSERT INTO notes VALUES ('not yours')"))
    engine.dispose()


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda path: path.write_bytes(b""), id="empty"),
        pytest.param(lambda path: path.write_bytes(b"region,year\nSouss,2025\n" * 30), id="csv"),
        pytest.param(_foreign, id="foreign"),
    ],
)
@pytest.mark.parametrize(
    "options",
    [{"migrate": False}, {"create": False}, {"create": False, "migrate": False}, {}],
    ids=["read-only", "existing", "both", "default"],
)
def test_a_file_that_is_no_governance_database_is_refused_untouched(tmp_path, make, options):
    """An empty file (except where a new database may be made), a file that is no SQLite
    database and another application's database are refused with StoreError and stay byte
    for byte as they were: nothing is migrated into them, not even a journal mode."""
    path = tmp_path / "target.sqlite"
    make(path)
    before = path.read_bytes()
    creating = options == {}
    if creating and not before:
        store = GovernanceStore.open(str(path), **options)  # a new database, in an empty file
        assert store.revision() == head_revision()
        store.close()
        return
    with pytest.raises(StoreError, match="not a Tabadul governance database"):
        GovernanceStore.open(str(path), **options)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target.sqlite"]


def test_an_existing_database_at_an_older_revision_is_migrated(tmp_path):
    """create=False takes a governance database at a revision it knows and migrates it."""
    path = tmp_path / "old.sqlite"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        config = governance_db.alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
    engine.dispose()
    store = GovernanceStore.open(str(path), create=False)
    try:
        assert store.revision() == head_revision()
    finally:
        store.close()
    with pytest.raises(StoreError, match="no governance database"):
        GovernanceStore.open(str(tmp_path / "missing.sqlite"), create=False)
    assert not (tmp_path / "missing.sqlite").exists()
