"""API tokens remember the token they were issued with (``parent_token_id``), so that a
token minted with another dies with it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("parent_token_id", sa.String(32), nullable=True))
        batch.create_foreign_key(
            "fk_api_tokens_parent", "api_tokens", ["parent_token_id"], ["token_id"]
        )
        batch.create_index("ix_api_tokens_parent", ["parent_token_id"])


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_index("ix_api_tokens_parent")
        batch.drop_constraint("fk_api_tokens_parent", type_="foreignkey")
        batch.drop_column("parent_token_id")
