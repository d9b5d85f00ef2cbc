"""host_revocations

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
        "host_revocations",
        sa.Column("certificate_id", sa.String(length=36), nullable=False),
        sa.Column("host_id", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("certificate_id", "host_id"),
    )


def downgrade() -> None:
    op.drop_table("host_revocations")
