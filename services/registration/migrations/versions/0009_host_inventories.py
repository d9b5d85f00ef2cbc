"""host inventories: what a host holds apart from its liveness, and the watchdog's index

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from datetime import UTC, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# directdl.liveness.MISSED_HEARTBEATS when this was written; a migration never changes.
MISSED_HEARTBEATS = 3

hosts = sa.table(
    "hosts",
    sa.column("host_id", sa.String),
    sa.column("interval_seconds", sa.Double),
    sa.column("last_seen", sa.DateTime(timezone=True)),
    sa.column("silent_after", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    op.create_table(
        "host_inventories",
        sa.Column("host_id", sa.String(length=255), nullable=False),
        sa.Column("pools", sa.JSON(), nullable=False),
        sa.Column("templates", sa.JSON(), nullable=False),
        sa.Column("digest", sa.String(length=160), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("edited", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("host_id"),
    )
    # What each host held, with no digest: each host's next heartbeat asks for its inventory.
    op.execute(
        "INSERT INTO host_inventories (host_id, pools, templates, digest, sent_at, edited) "
        "SELECT host_id, pools, templates, NULL, NULL, false FROM hosts"
    )
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("silent_after", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("reported_digest", sa.String(length=160), nullable=True))
        batch_op.add_column(
            sa.Column("inventory_asked_at", sa.DateTime(timezone=True), nullable=True)
        )
    _fill_silent_after()
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.alter_column(
            "silent_after", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.create_index(batch_op.f("ix_hosts_silent_after"), ["silent_after"], unique=False)
        batch_op.drop_column("pools")
        batch_op.drop_column("templates")


def _fill_silent_after() -> None:
    """Interval arithmetic is written differently in each database's SQL; a few rows each."""
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(hosts.c.host_id, hosts.c.interval_seconds, hosts.c.last_seen)
    )
    for host_id, interval, last_seen in rows.all():
        seen = last_seen if last_seen.tzinfo else last_seen.replace(tzinfo=UTC)
        silent_after = seen + timedelta(seconds=interval * MISSED_HEARTBEATS)
        connection.execute(
            hosts.update().where(hosts.c.host_id == host_id).values(silent_after=silent_after)
        )


def downgrade() -> None:
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pools", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("templates", sa.JSON(), nullable=False, server_default="[]"))
    op.execute(
        "UPDATE hosts SET "
        "pools = (SELECT i.pools FROM host_inventories i WHERE i.host_id = hosts.host_id), "
        "templates = (SELECT i.templates FROM host_inventories i WHERE i.host_id = hosts.host_id) "
        "WHERE host_id IN (SELECT host_id FROM host_inventories)"
    )
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hosts_silent_after"))
        batch_op.drop_column("inventory_asked_at")
        batch_op.drop_column("reported_digest")
        batch_op.drop_column("silent_after")
    op.drop_table("host_inventories")
