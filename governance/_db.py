"""Governance's database: users, datasets, reviews with their PII findings, and the audit
log. SQLite file by default, PostgreSQL by URL (optionally in its own schema), through
SQLAlchemy Core. The schema is owned by the alembic migrations shipped in
``governance/migrations``; :meth:`GovernanceStore.open` runs them to head, in code (no
``alembic.ini``). The tables below describe the same schema for queries; a test compares
them with what the migrations build.

Timestamps are stored as wire-format text (``2026-11-22T14:00:00.123Z``) so that what the
audit log hashes is exactly what it stores, on either database.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import SQLAlchemyError

from governance._errors import StoreError

if TYPE_CHECKING:
    from governance._audit import AuditSigner

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
# Serialises concurrent migrations of one PostgreSQL database (any constant will do).
_MIGRATION_LOCK = 0x7A_BAD_01

metadata = sa.MetaData()

users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("agency", sa.String(64), nullable=False, index=True),
    # JSON list of role names: operator, steward, approver, auditor
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("created_at", sa.String(24), nullable=False),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("dataset_id", sa.String(100), primary_key=True),
    sa.Column("owner_agency", sa.String(64), nullable=False, index=True),
    sa.Column("steward", sa.String(64), sa.ForeignKey("users.user_id"), nullable=False),
    # {"ar": ..., "fr": ..., "en": ...}: at least one language
    sa.Column("title", sa.JSON, nullable=False),
    sa.Column("description", sa.JSON, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("table_schema", sa.JSON, nullable=False),
    sa.Column("licence", sa.String(64), nullable=False),
    sa.Column("update_frequency", sa.String(16), nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("classification", sa.String(16), nullable=True),
    sa.Column("personal_data", sa.Boolean, nullable=True),
    sa.Column("legal_basis", sa.Text, nullable=True),
    sa.Column("justification", sa.Text, nullable=True),
    sa.Column("classified_by", sa.String(64), nullable=True),
    # SHA-256 (hex) of the content last submitted for review
    sa.Column("content_sha256", sa.String(64), nullable=True),
    # what is live on the portal, if anything
    sa.Column("published_sha256", sa.String(64), nullable=True),
    sa.Column("publication_reference", sa.Text, nullable=True),
    sa.Column("created_at", sa.String(24), nullable=False),
    sa.Column("updated_at", sa.String(24), nullable=False),
)

reviews = sa.Table(
    "reviews",
    metadata,
    sa.Column("review_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset_id", sa.String(100), sa.ForeignKey("datasets.dataset_id"), nullable=False),
    sa.Column("content_sha256", sa.String(64), nullable=False),
    sa.Column("submitted_by", sa.String(64), nullable=False),
    sa.Column("submitted_at", sa.String(24), nullable=False),
    # open, approved, rejected, superseded (new bytes submitted, or withdrawn)
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("decided_by", sa.String(64), nullable=True),
    sa.Column("decided_at", sa.String(24), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    # {"pii": <screening report>, "validation": <Frictionless report>}, as data (no values)
    sa.Column("reports", sa.JSON, nullable=True),
    sa.Index("ix_reviews_dataset", "dataset_id", "review_id"),
)

findings = sa.Table(
    "review_findings",
    metadata,
    sa.Column("review_id", sa.Integer, sa.ForeignKey("reviews.review_id"), primary_key=True),
    sa.Column("finding_id", sa.String(128), primary_key=True),
    # drop, generalise, neutralise, justify; null while unresolved
    sa.Column("resolution", sa.String(16), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("resolved_by", sa.String(64), nullable=True),
    sa.Column("resolved_at", sa.String(24), nullable=True),
)

AUDIT_SIGNER = "tabadul.audit_signer"  # the key under which a connection carries the signer
EMPTY_ROOT_HEX = (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # SHA-256 of b""
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(24), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False, index=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("content_sha256", sa.String(64), nullable=True),
    # canonical JSON text, hashed as parsed
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

# API tokens of the management API: the secret is shown once, only its SHA-256 is kept.
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("token_id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.String(64), sa.ForeignKey("users.user_id"), nullable=False),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", sa.String(24), nullable=False),
    sa.Column("expires_at", sa.String(24), nullable=False),
    sa.Column("revoked_at", sa.String(24), nullable=True),
    sa.Column("last_used_at", sa.String(24), nullable=True),
    # the token this one was issued with, if any: it expires no later and is revoked with it
    sa.Column(
        "parent_token_id",
        sa.String(32),
        sa.ForeignKey("api_tokens.token_id", name="fk_api_tokens_parent"),
        nullable=True,
    ),
    sa.Index("ix_api_tokens_user", "user_id"),
    sa.Index("ix_api_tokens_parent", "parent_token_id"),
)

# One row (id 1): the seq and hash of the last entry, written with it. Appenders lock it (so
# PostgreSQL writers queue), and verification compares it with the chain's end, which catches
# entries cut from the tail or added after it.
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    # the Merkle tree over the entries: its compact range (JSON list of hex roots) and root
    sa.Column("tree", sa.Text, nullable=False, server_default="[]"),
    sa.Column("root", sa.String(64), nullable=False, server_default=EMPTY_ROOT_HEX),
    # the latest signed tree head (none until a signing key is configured)
    sa.Column("log_id", sa.String(300), nullable=True),
    sa.Column("signed_size", sa.Integer, nullable=False, server_default="0"),
    sa.Column("signed_root", sa.String(64), nullable=True),
    sa.Column("signed_at", sa.String(24), nullable=True),
    sa.Column("signature", sa.String(128), nullable=True),
    sa.Column("certificate", sa.Text, nullable=True),
)

# Cosignatures of the audit log's heads that witnesses sent back (exchange.log.Cosignature)
audit_cosignatures = sa.Table(
    "audit_cosignatures",
    metadata,
    sa.Column("log_id", sa.String(300), primary_key=True),
    sa.Column("size", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("witness", sa.String(260), primary_key=True),
    sa.Column("root", sa.String(64), nullable=False),
    sa.Column("at", sa.String(24), nullable=False),
    sa.Column("head_signature", sa.String(128), nullable=False),
    sa.Column("witnessed_at", sa.String(24), nullable=False),
    sa.Column("signature", sa.String(128), nullable=False),
    sa.Column("certificate", sa.Text, nullable=False),
)


def database_url(location: str) -> str:
    """A SQLAlchemy URL: ``postgresql://`` URLs use psycopg 3; anything else is a SQLite file."""
    if location.startswith(("postgresql://", "postgresql+psycopg://")):
        return location.replace("postgresql://", "postgresql+psycopg://", 1)
    if location.startswith("sqlite:"):
        return location
    return f"sqlite:///{location}"


def alembic_config() -> Config:
    """The alembic configuration, built in code: the migrations shipped in the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    return config


def head_revision() -> str:
    """The newest revision the shipped migrations know."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None  # the package ships at least one revision
    return head


class GovernanceStore:
    """Governance's database. Thread-safe; every database failure raises :class:`StoreError`.

    Open it with :meth:`open`; ``close`` releases its connections.
    """

    def __init__(self, engine: sa.Engine, *, sqlite: bool) -> None:
        self.engine = engine
        self.sqlite = sqlite
        self._lock = threading.RLock()
        # Signs the audit log's tree head with every entry (governance._audit); None leaves
        # the head unsigned. Every transaction hands it to the entries appended in it.
        self.audit_signer: AuditSigner | None = None

    @classmethod
    def open(
        cls,
        location: str,
        *,
        schema: str | None = None,
        migrate: bool = True,
        create: bool = True,
    ) -> GovernanceStore:
        """Open the database at ``location`` (a SQLite path or a ``postgresql://`` URL; on
        PostgreSQL, in ``schema`` if given, created if missing) and migrate it to head.

        With ``create=False`` it must already be a governance database, at a revision the
        shipped migrations know (it is then migrated). With ``migrate=False`` nothing is
        created nor migrated: it must be at the shipped head revision (what read-only tools
        want). A SQLite file that is there and not empty is always looked at read-only
        first: one that is no SQLite database, or another application's, is refused with
        :class:`StoreError` and left exactly as it was (a new database is made only in a
        new or empty file, and only with ``create``).
        """
        url = database_url(location)
        sqlite = url.startswith("sqlite")
        existing = not (create and migrate)  # only an existing governance database will do
        if schema is not None and not _SCHEMA_NAME.match(schema):
            raise StoreError(f"{schema!r} is not a plain schema name (letters, digits, _)")
        path = _sqlite_path(url) if sqlite else None
        if sqlite and (existing or (path is not None and path.is_file() and path.stat().st_size)):
            _check_revision(location, _sqlite_revision(path, location), at_head=not migrate)
        try:
            if sqlite:
                engine = sa.create_engine(url)
                sa.event.listen(engine, "connect", _sqlite_connect)
                sa.event.listen(engine, "begin", _sqlite_begin)
            else:
                connect_args = {"options": f"-csearch_path={schema}"} if schema else {}
                engine = sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StoreError(f"cannot open the governance database {location}: {exc}") from exc
        store = cls(engine, sqlite=sqlite)
        try:
            if existing and not sqlite:
                _check_revision(location, store.revision(), at_head=not migrate)
            if migrate:
                store.migrate(schema)
        except BaseException:
            engine.dispose()
            raise
        return store

    def migrate(self, schema: str | None = None) -> None:
        """Run the shipped migrations up to head (nothing to do when already there)."""
        config = alembic_config()
        with self.transaction("migrate") as conn:
            if not self.sqlite:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
                if schema:
                    conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def revision(self) -> str | None:
        """The database's current alembic revision (None before any migration)."""
        with self.transaction("read the schema revision") as conn:
            return MigrationContext.configure(conn).get_current_revision()

    @contextmanager
    def transaction(self, what: str) -> Iterator[sa.Connection]:
        """One transaction: committed if the block ends normally, rolled back otherwise.
        Database errors become :class:`StoreError` naming ``what`` failed."""
        try:
            with self._lock, self.engine.begin() as conn:
                conn.info[AUDIT_SIGNER] = self.audit_signer
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"the governance database failed to {what}: {exc}") from exc

    def close(self) -> None:
        self.engine.dispose()


def _check_revision(location: str, found: str | None, *, at_head: bool) -> None:
    """Raise :class:`StoreError` unless ``found`` is the shipped head revision (``at_head``)
    or, otherwise, any revision the shipped migrations know."""
    head = head_revision()
    scripts = ScriptDirectory.from_config(alembic_config())
    if found == head or (not at_head and found in {s.revision for s in scripts.walk_revisions()}):
        return
    wanted = f"at revision {head}" if at_head else "at a revision Tabadul knows"
    raise StoreError(
        f"{location} is not a Tabadul governance database {wanted} (found {found or 'no revision'})"
    )


def _sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for a database in memory)."""
    database = sa.make_url(url).database
    return Path(database) if database and database != ":memory:" else None


def _sqlite_revision(path: Path | None, location: str) -> str | None:
    """The alembic revision of an existing SQLite file, read through a read-only connection
    (nothing is written, whatever the file holds); None when it has no revision table.
    Raises :class:`StoreError` when there is no such file or it is no SQLite database."""
    if path is None or not path.is_file():
        raise StoreError(f"no governance database at {location}")
    try:
        with contextlib.closing(
            sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        ) as conn:
            if not conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            ).fetchone():
                return None
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error as exc:
        raise StoreError(f"{location} is not a Tabadul governance database: {exc}") from exc
    return str(row[0]) if row else None


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event below issue BEGIN itself: pysqlite's own deferred
    # transactions would let two writers both read the audit head and then deadlock.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")
