"""deploy history: each attempt's last progress

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = ("bytes_done", "total_bytes", "rate_bps", "progress_at")


def upgrade() -> None:
    with op.batch_alter_table("deploy_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bytes_done", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("total_bytes", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("rate_bps", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("progress_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deploy_attempts", schema=None) as batch_op:
        for column in reversed(COLUMNS):
            batch_op.drop_column(column)
