"""Open a message log's store from a location string (what the CLI and config hold)."""

from __future__ import annotations

from exchange.log._postgres import PostgresLogStore
from exchange.log._sqlite import SQLiteLogStore
from exchange.log._store import DEFAULT_NAME, LogStore


def open_store(location: str, *, name: str = DEFAULT_NAME, create: bool = True) -> LogStore:
    """The store at ``location``: a ``postgresql://`` (or ``postgres://``) URL, whose log
    lives in the schema ``name``, or else a SQLite file path. With ``create=False`` a log
    that does not exist yet is an error rather than created. Raises ``LogError``."""
    if location.startswith(("postgresql://", "postgres://")):
        return PostgresLogStore(location, name=name, create=create)
    return SQLiteLogStore(location, create=create)
