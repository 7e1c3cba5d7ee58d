"""Grants bound to a purpose, a legal basis and an expiry.

A send grant is now one per (sender, type, recipient, purpose), so the grants move to a new
table, ``bus_send_grants``, whose key includes the purpose; subscriptions gain the same
terms. Grants made before keep the unspecified purpose, no recorded basis and no end.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

_SUBSYSTEM = "bus_subsystems.subsystem_id"
_TERMS = ("purpose", "legal_basis", "legal_reference", "expires")


def _terms() -> list[sa.Column[object]]:
    return [
        sa.Column("purpose", sa.String(64), nullable=False, server_default="unspecified"),
        sa.Column("legal_basis", sa.Text, nullable=False, server_default=""),
        sa.Column("legal_reference", sa.Text, nullable=False, server_default=""),
        sa.Column("expires", sa.String(24), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "bus_send_grants",
        sa.Column("sender", sa.String(260), sa.ForeignKey(_SUBSYSTEM), primary_key=True),
        sa.Column("message_type", sa.String(200), primary_key=True),
        sa.Column("recipient", sa.String(260), sa.ForeignKey(_SUBSYSTEM), primary_key=True),
        sa.Column("purpose", sa.String(64), primary_key=True),
        *_terms()[1:],
    )
    op.execute(
        "INSERT INTO bus_send_grants (sender, message_type, recipient, purpose, legal_basis, "
        "legal_reference) SELECT sender, message_type, recipient, 'unspecified', '', '' "
        "FROM bus_grants"
    )
    op.drop_table("bus_grants")
    with op.batch_alter_table("bus_subscriptions") as batch:
        for column in _terms():
            batch.add_column(column)


def downgrade() -> None:
    with op.batch_alter_table("bus_subscriptions") as batch:
        for name in reversed(_TERMS):
            batch.drop_column(name)
    op.create_table(
        "bus_grants",
        sa.Column("sender", sa.String(260), sa.ForeignKey(_SUBSYSTEM), primary_key=True),
        sa.Column("message_type", sa.String(200), primary_key=True),
        sa.Column("recipient", sa.String(260), sa.ForeignKey(_SUBSYSTEM), primary_key=True),
    )
    op.execute(
        "INSERT INTO bus_grants (sender, message_type, recipient) "
        "SELECT DISTINCT sender, message_type, recipient FROM bus_send_grants"
    )
    op.drop_table("bus_send_grants")
