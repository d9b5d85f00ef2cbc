"""hosts and deploys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deploys",
        sa.Column("deploy_id", sa.String(length=36), nullable=False),
        sa.Column("template_id", sa.String(length=36), nullable=False),
        sa.Column("zone_id", sa.String(length=255), nullable=False),
        sa.Column("requested_host_id", sa.String(length=255), nullable=True),
        sa.Column("requested_pool_id", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reply_to", sa.String(length=255), nullable=True),
        sa.Column("correlation_id", sa.String(length=255), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("deploy_id"),
    )
    with op.batch_alter_table("deploys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deploys_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_deploys_template_id"), ["template_id"], unique=False)

    op.create_table(
        "hosts",
        sa.Column("host_id", sa.String(length=255), nullable=False),
        sa.Column("zone_id", sa.String(length=255), nullable=False),
        sa.Column("cluster_id", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("interval_seconds", sa.Double(), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pools", sa.JSON(), nullable=False),
        sa.Column("templates", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("host_id"),
    )
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hosts_zone_id"), ["zone_id"], unique=False)

    op.create_table(
        "deploy_attempts",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("deploy_id", sa.String(length=36), nullable=False),
        sa.Column("host_id", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["deploy_id"], ["deploys.deploy_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id"),
    )
    with op.batch_alter_table("deploy_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deploy_attempts_deploy_id"), ["deploy_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_deploy_attempts_host_id"), ["host_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_deploy_attempts_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deploy_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deploy_attempts_state"))
        batch_op.drop_index(batch_op.f("ix_deploy_attempts_host_id"))
        batch_op.drop_index(batch_op.f("ix_deploy_attempts_deploy_id"))

    op.drop_table("deploy_attempts")
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hosts_zone_id"))

    op.drop_table("hosts")
    with op.batch_alter_table("deploys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deploys_template_id"))
        batch_op.drop_index(batch_op.f("ix_deploys_state"))

    op.drop_table("deploys")
