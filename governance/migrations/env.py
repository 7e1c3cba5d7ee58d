"""Alembic environment of the governance database.

:meth:`governance.GovernanceStore.open` runs it in code and hands over its connection in
``config.attributes["connection"]``; developers may also point ``sqlalchemy.url`` at a
database (e.g. to autogenerate a revision). Offline (SQL script) mode is not supported.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from governance._db import metadata


def _run(connection: sa.Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations() -> None:
    if context.is_offline_mode():
        raise RuntimeError("the governance migrations run online only")
    connection = context.config.attributes.get("connection")
    if isinstance(connection, sa.Connection):
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url or pass a connection in config.attributes")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


run_migrations()
