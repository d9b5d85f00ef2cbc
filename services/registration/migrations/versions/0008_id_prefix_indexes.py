"""id prefix indexes: template.list's and deploy.list's id_prefix, a LIKE 'prefix%'

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.create_index(
            "ix_templates_id_prefix", ["id"], postgresql_ops={"id": "varchar_pattern_ops"}
        )
    with op.batch_alter_table("deploys", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deploys_id_prefix",
            ["deploy_id"],
            postgresql_ops={"deploy_id": "varchar_pattern_ops"},
        )


def downgrade() -> None:
    with op.batch_alter_table("deploys", schema=None) as batch_op:
        batch_op.drop_index("ix_deploys_id_prefix")
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.drop_index("ix_templates_id_prefix")
