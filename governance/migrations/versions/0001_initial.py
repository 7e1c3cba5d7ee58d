"""Users, datasets, reviews with their PII findings, and the hash-chained audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("created_at", sa.String(24), nullable=False),
    )
    op.create_index("ix_users_agency", "users", ["agency"])
    op.create_table(
        "datasets",
        sa.Column("dataset_id", sa.String(100), primary_key=True),
        sa.Column("owner_agency", sa.String(64), nullable=False),
        sa.Column("steward", sa.String(64), sa.ForeignKey("users.user_id"), nullable=False),
        sa.Column("title", sa.JSON, nullable=False),
        sa.Column("description", sa.JSON, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("table_schema", sa.JSON, nullable=False),
        sa.Column("licence", sa.String(64), nullable=False),
        sa.Column("update_frequency", sa.String(16), nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("classification", sa.String(16), nullable=True),
        sa.Column("personal_data", sa.Boolean, nullable=True),
        sa.Column("legal_basis", sa.Text, nullable=True),
        sa.Column("justification", sa.Text, nullable=True),
        sa.Column("classified_by", sa.String(64), nullable=True),
        sa.Column("content_sha256", sa.String(64), nullable=True),
        sa.Column("published_sha256", sa.String(64), nullable=True),
        sa.Column("publication_reference", sa.Text, nullable=True),
        sa.Column("created_at", sa.String(24), nullable=False),
        sa.Column("updated_at", sa.String(24), nullable=False),
    )
    op.create_index("ix_datasets_owner_agency", "datasets", ["owner_agency"])
    op.create_index("ix_datasets_state", "datasets", ["state"])
    op.create_table(
        "reviews",
        sa.Column("review_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "dataset_id", sa.String(100), sa.ForeignKey("datasets.dataset_id"), nullable=False
        ),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("submitted_by", sa.String(64), nullable=False),
        sa.Column("submitted_at", sa.String(24), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decided_at", sa.String(24), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
    )
    op.create_index("ix_reviews_dataset", "reviews", ["dataset_id", "review_id"])
    op.create_table(
        "review_findings",
        sa.Column("review_id", sa.Integer, sa.ForeignKey("reviews.review_id"), primary_key=True),
        sa.Column("finding_id", sa.String(128), primary_key=True),
        sa.Column("resolution", sa.String(16), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("resolved_by", sa.String(64), nullable=True),
        sa.Column("resolved_at", sa.String(24), nullable=True),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(24), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=True),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_subject", "audit_log", ["subject"])
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    head = sa.table("audit_head", sa.column("id"), sa.column("seq"), sa.column("hash"))
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": "0" * 64}])  # the empty chain


def downgrade() -> None:
    for table in ("audit_head", "audit_log", "review_findings", "reviews", "datasets", "users"):
        op.drop_table(table)
