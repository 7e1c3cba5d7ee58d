"""Alembic revisions of the governance database (alembic skips this file)."""
