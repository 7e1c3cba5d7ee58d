"""Derived datasets: the lineage of files made publishable by dropping or generalising
columns (``governance/_derive.py``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "derivations",
        sa.Column("derivation_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "dataset_id", sa.String(100), sa.ForeignKey("datasets.dataset_id"), nullable=False
        ),
        sa.Column("source_sha256", sa.String(64), nullable=False),
        sa.Column("derived_sha256", sa.String(64), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("operations", sa.JSON, nullable=False),
        sa.Column("emptied", sa.JSON, nullable=False),
        sa.Column("actor", sa.String(64), sa.ForeignKey("users.user_id"), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", sa.String(24), nullable=False),
        sa.Column("review_id", sa.Integer, sa.ForeignKey("reviews.review_id"), nullable=True),
        sa.Column("resolved", sa.JSON, nullable=False),
    )
    op.create_index("ix_derivations_dataset", "derivations", ["dataset_id", "derivation_id"])


def downgrade() -> None:
    op.drop_index("ix_derivations_dataset", table_name="derivations")
    op.drop_table("derivations")
