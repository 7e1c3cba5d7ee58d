"""The audit log as a Merkle tree with signed, witnessed heads.

The head row gains the tree's compact range and root (computed here for the entries already
stored), the latest signed tree head (none until a governance signing key is configured), and
a table keeps the cosignatures witnesses send back.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from exchange.log import CompactRange, leaf_hash

revision: str = "0008"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

EMPTY_ROOT = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _head_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("tree", sa.Text, nullable=False, server_default="[]"),
        sa.Column("root", sa.String(64), nullable=False, server_default=EMPTY_ROOT),
        sa.Column("log_id", sa.String(300), nullable=True),
        sa.Column("signed_size", sa.Integer, nullable=False, server_default="0"),
        sa.Column("signed_root", sa.String(64), nullable=True),
        sa.Column("signed_at", sa.String(24), nullable=True),
        sa.Column("signature", sa.String(128), nullable=True),
        sa.Column("certificate", sa.Text, nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table("audit_head") as batch:
        for column in _head_columns():
            batch.add_column(column)
    bind = op.get_bind()
    tree = CompactRange()
    for (digest,) in bind.execute(sa.text("SELECT hash FROM audit_log ORDER BY seq")):
        tree.append(leaf_hash(bytes.fromhex(digest)))
    bind.execute(
        sa.text("UPDATE audit_head SET tree = :tree, root = :root WHERE id = 1"),
        {"tree": json.dumps([node.hex() for node in tree.roots]), "root": tree.root().hex()},
    )
    op.create_table(
        "audit_cosignatures",
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


def downgrade() -> None:
    op.drop_table("audit_cosignatures")
    with op.batch_alter_table("audit_head") as batch:
        for column in reversed(_head_columns()):
            batch.drop_column(column.name)
