"""Alembic migrations of the governance database (a package so that they ship with it)."""
