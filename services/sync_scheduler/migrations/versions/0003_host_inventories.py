"""host_inventories apart from hosts, inventory_requested_at

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The trust stores read from the old, fat heartbeats are not carried over: they have no
    # inventory digest, so every host would be asked for its inventory all the same. Each host
    # is asked once at its next beat, and is planned for again once its inventory is in.
    op.create_table(
        "host_inventories",
        sa.Column("host_id", sa.String(length=255), nullable=False),
        sa.Column("digest", sa.String(length=160), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trusted", sa.JSON(), nullable=False),
        sa.Column("trusted_digest", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("host_id"),
    )
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("inventory_requested_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.drop_column("trusted_digest")
        batch_op.drop_column("trusted")


def downgrade() -> None:
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trusted", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(
            sa.Column("trusted_digest", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.drop_column("inventory_requested_at")
    op.drop_table("host_inventories")
