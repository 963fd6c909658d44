"""human review: reviewer keys, each result's label and uncertainty as columns, reviews

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 15:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("role", sa.String(16), nullable=False, server_default="client"))
    # The review queue filters and orders by these: columns, so a page is one indexed query, not a JSON scan.
    with op.batch_alter_table("job_items") as batch:
        batch.add_column(sa.Column("label", sa.String(64), nullable=True))
        batch.add_column(sa.Column("confidence", sa.Float(), nullable=True))
        batch.add_column(sa.Column("uncertainty", sa.Float(), nullable=True))
    op.create_index("ix_items_job_uncertainty", "job_items", ["job_id", "uncertainty"])
    op.create_table(
        "reviews",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(40), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("item_id", BigId, sa.ForeignKey("job_items.id", ondelete="CASCADE"), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("teacher_label", sa.String(64), nullable=True),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("item_id", "reviewer", name="uq_reviews_item_reviewer"),
    )
    op.create_index("ix_reviews_job_id", "reviews", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_reviews_job_id", table_name="reviews")
    op.drop_table("reviews")
    op.drop_index("ix_items_job_uncertainty", table_name="job_items")
    with op.batch_alter_table("job_items") as batch:
        batch.drop_column("uncertainty")
        batch.drop_column("confidence")
        batch.drop_column("label")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("role")
