"""tasks: labelling tasks as data (versioned per tenant), and the task a job was made under

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 18:20:00
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
        "tasks",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("prompt_version", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant", "name", "version", name="uq_tasks_tenant_name_version"),
    )
    op.create_index("ix_tasks_tenant", "tasks", ["tenant"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("task_id", sa.String(40), nullable=True))
        batch.add_column(sa.Column("task", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("task")
        batch.drop_column("task_id")
    op.drop_index("ix_tasks_tenant", table_name="tasks")
    op.drop_table("tasks")
