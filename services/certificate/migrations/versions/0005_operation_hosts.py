"""operation hosts: a row per host asked, in place of the operation's JSON lists; inventories

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

Operations in flight at the upgrade keep working: each host they wait for, and each outcome
they hold, becomes a row, so that the answers still to come, and the timer, find them.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

WAITING = "WAITING"

operations = sa.table(
    "operations",
    sa.column("id", sa.String),
    sa.column("waiting_for", sa.JSON),
    sa.column("outcomes", sa.JSON),
)
operation_hosts = sa.table(
    "operation_hosts",
    sa.column("operation_id", sa.String),
    sa.column("host_id", sa.String),
    sa.column("state", sa.String),
    sa.column("reason", sa.Text),
)


def upgrade() -> None:
    op.create_table(
        "operation_hosts",
        sa.Column("operation_id", sa.String(length=36), nullable=False),
        sa.Column("host_id", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["operation_id"], ["operations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("operation_id", "host_id"),
    )
    connection = op.get_bind()
    rows: list[dict[str, Any]] = []
    for op_id, waiting_for, outcomes in connection.execute(
        sa.select(operations.c.id, operations.c.waiting_for, operations.c.outcomes)
    ):
        hosts = {h: {"state": WAITING, "reason": None} for h in _listed(waiting_for)}
        for outcome in _listed(outcomes):
            hosts[outcome["host_id"]] = {"state": outcome["state"], "reason": outcome.get("reason")}
        rows += [{"operation_id": op_id, "host_id": h, **fields} for h, fields in hosts.items()]
    if rows:
        connection.execute(operation_hosts.insert(), rows)
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.drop_column("waiting_for")
        batch_op.drop_column("outcomes")
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("inventory_digest", sa.String(length=128), nullable=True))
        batch_op.add_column(
            sa.Column("inventory_asked_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.drop_column("inventory_asked_at")
        batch_op.drop_column("inventory_digest")
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("waiting_for", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("outcomes", sa.JSON(), nullable=True))
    connection = op.get_bind()
    lists: dict[str, dict[str, list[Any]]] = {
        op_id: {"waiting_for": [], "outcomes": []}
        for (op_id,) in connection.execute(sa.select(operations.c.id))
    }
    for op_id, host_id, state, reason in connection.execute(
        sa.select(operation_hosts).order_by(operation_hosts.c.host_id)
    ):
        if state == WAITING:
            lists[op_id]["waiting_for"].append(host_id)
        else:
            lists[op_id]["outcomes"].append({"host_id": host_id, "state": state, "reason": reason})
    for op_id, fields in lists.items():
        connection.execute(operations.update().where(operations.c.id == op_id).values(**fields))
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.alter_column("waiting_for", nullable=False)
        batch_op.alter_column("outcomes", nullable=False)
    op.drop_table("operation_hosts")


def _listed(value: Any) -> list[Any]:
    # Some drivers hand a JSON column back as text.
    return list(json.loads(value) if isinstance(value, str) else value or [])
