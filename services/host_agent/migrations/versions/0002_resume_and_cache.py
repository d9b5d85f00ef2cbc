"""a job's validator for resuming; copies' image digest and last use; the cache policy

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("validator", sa.String(length=512), nullable=True))
    with op.batch_alter_table("stored_templates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("image_digest", sa.String(length=160), nullable=True))
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    # A copy stored before this revision was last used, as far as anyone knows, when stored.
    op.execute("UPDATE stored_templates SET last_used_at = stored_at")
    with op.batch_alter_table("stored_templates", schema=None) as batch_op:
        batch_op.alter_column(
            "last_used_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.create_index(
            batch_op.f("ix_stored_templates_last_used_at"), ["last_used_at"], unique=False
        )
    op.create_table(
        "cache_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("max_bytes", sa.BigInteger(), nullable=False),
        sa.Column("max_age_s", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("cache_policy")
    with op.batch_alter_table("stored_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stored_templates_last_used_at"))
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("image_digest")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("validator")
