"""Task ids: the tasks face's id (``task-unified-<unix time>-<8 chars>``) of a job.

A nullable column and a unique index (NULLs do not collide on SQLite or PostgreSQL).
On PostgreSQL adding a nullable column without a default rewrites nothing; the index is
built over a column that is NULL everywhere, in the migration's transaction.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("predictions", sa.Column("task_id", sa.String(40), nullable=True))
    op.create_index("uq_predictions_task_id", "predictions", ["task_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_predictions_task_id", table_name="predictions")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("task_id")
