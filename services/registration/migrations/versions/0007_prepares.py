"""prepares: a template pre-cached on many hosts of a zone, one deploy per host

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prepares",
        sa.Column("prepare_id", sa.String(length=36), nullable=False),
        sa.Column("template_id", sa.String(length=36), nullable=False),
        sa.Column("zone_id", sa.String(length=255), nullable=False),
        sa.Column("pool_id", sa.String(length=255), nullable=True),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("reply_to", sa.String(length=255), nullable=True),
        sa.Column("correlation_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("prepare_id"),
    )
    with op.batch_alter_table("prepares", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_prepares_template_id"), ["template_id"], unique=False)

    op.create_table(
        "prepare_hosts",
        sa.Column("prepare_id", sa.String(length=36), nullable=False),
        sa.Column("host_id", sa.String(length=255), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("deploy_id", sa.String(length=36), nullable=True),
        sa.Column("code", sa.String(length=255), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["prepare_id"], ["prepares.prepare_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("prepare_id", "host_id"),
    )
    with op.batch_alter_table("prepare_hosts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_prepare_hosts_deploy_id"), ["deploy_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("prepare_hosts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prepare_hosts_deploy_id"))

    op.drop_table("prepare_hosts")
    with op.batch_alter_table("prepares", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prepares_template_id"))

    op.drop_table("prepares")
