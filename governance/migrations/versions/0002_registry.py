"""The bus registry: members, subsystems, certificates, services, grants, subscriptions and
the published directories.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_SUBSYSTEM = "bus_subsystems.subsystem_id"


def upgrade() -> None:
    op.create_table(
        "bus_members",
        sa.Column("member_id", sa.String(200), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(24), nullable=False),
    )
    op.create_table(
        "bus_subsystems",
        sa.Column("subsystem_id", sa.String(260), primary_key=True),
        sa.Column(
            "member_id", sa.String(200), sa.ForeignKey("bus_members.member_id"), nullable=False
        ),
        sa.Column("created_at", sa.String(24), nullable=False),
    )
    op.create_index("ix_bus_subsystems_member_id", "bus_subsystems", ["member_id"])
    op.create_table(
        "bus_certificates",
        sa.Column("fingerprint", sa.String(71), primary_key=True),
        sa.Column("subsystem_id", sa.String(260), sa.ForeignKey(_SUBSYSTEM), nullable=False),
        sa.Column("serial", sa.String(40), nullable=False, unique=True),
        sa.Column("usage", sa.String(16), nullable=False),
        sa.Column("not_before", sa.String(24), nullable=False),
        sa.Column("not_after", sa.String(24), nullable=False),
        sa.Column("retire_after", sa.String(24), nullable=True),
        sa.Column("pem", sa.Text, nullable=False),
        sa.Column("revoked_at", sa.String(24), nullable=True),
        sa.Column("revoked_reason", sa.Text, nullable=True),
        sa.Column("created_at", sa.String(24), nullable=False),
    )
    op.create_index("ix_bus_certificates_subsystem_id", "bus_certificates", ["subsystem_id"])
    op.create_table(
        "bus_services",
        sa.Column("subsystem_id", sa.String(260), sa.ForeignKey(_SUBSYSTEM), primary_key=True),
        sa.Column("message_type", sa.String(200), primary_key=True),
        sa.Column("role", sa.String(16), primary_key=True),
        sa.Column("response_type", sa.String(200), nullable=True),
    )
    op.create_table(
        "bus_grants",
        sa.Column("sender", sa.String(260), sa.ForeignKey(_SUBSYSTEM), primary_key=True),
        sa.Column("message_type", sa.String(200), primary_key=True),
        sa.Column("recipient", sa.String(260), sa.ForeignKey(_SUBSYSTEM), primary_key=True),
    )
    op.create_table(
        "bus_subscriptions",
        sa.Column("subscriber", sa.String(260), sa.ForeignKey(_SUBSYSTEM), primary_key=True),
        sa.Column("topic", sa.String(200), primary_key=True),
    )
    op.create_table(
        "bus_directories",
        sa.Column("serial", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("issued", sa.String(24), nullable=False),
        sa.Column("expires", sa.String(24), nullable=False),
        sa.Column("published_by", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("document", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "bus_directories",
        "bus_subscriptions",
        "bus_grants",
        "bus_services",
        "bus_certificates",
        "bus_subsystems",
        "bus_members",
    ):
        op.drop_table(table)
