"""The spine: accounts, users, API keys, predictions (the queue), leases, logs.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("tier", sa.String(40), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(20), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scopes", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("last_used_at", sa.Double, nullable=True),
        sa.Column("revoked_at", sa.Double, nullable=True),
    )
    op.create_index("ix_api_keys_user_id", "api_keys", ["user_id"])
    op.create_table(
        "predictions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("api_key_id", sa.String(40), nullable=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("input", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("output", sa.Text, nullable=True),
        sa.Column("error_code", sa.String(40), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("progress", sa.Integer, nullable=False),
        sa.Column("is_public", sa.Boolean, nullable=False),
        sa.Column("output_folder", sa.String(256), nullable=True),
        sa.Column("webhook_url", sa.Text, nullable=True),
        sa.Column("webhook_events", sa.String(200), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("request_hash", sa.String(64), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("usage", sa.Text, nullable=True),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("queue_deadline", sa.Double, nullable=True),
        sa.Column("started_at", sa.Double, nullable=True),
        sa.Column("completed_at", sa.Double, nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'processing', 'succeeded', 'failed', 'canceled')",
            name=op.f("ck_predictions_status"),
        ),
    )
    op.create_index("ix_predictions_queue", "predictions", ["status", "model", "created_at"])
    op.create_index("ix_predictions_account_created", "predictions", ["account_id", "created_at"])
    op.create_index("ix_predictions_account_status", "predictions", ["account_id", "status"])
    op.create_index(
        "uq_predictions_account_idempotency",
        "predictions",
        ["account_id", "idempotency_key"],
        unique=True,
    )
    op.create_table(
        "job_leases",
        sa.Column(
            "prediction_id",
            sa.String(40),
            sa.ForeignKey("predictions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("token", sa.String(40), nullable=False),
        sa.Column("worker_id", sa.String(80), nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
    )
    op.create_index("ix_job_leases_expires_at", "job_leases", ["expires_at"])
    op.create_table(
        "prediction_logs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "prediction_id",
            sa.String(40),
            sa.ForeignKey("predictions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("line", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    op.create_index("ix_prediction_logs_prediction_id", "prediction_logs", ["prediction_id"])


def downgrade() -> None:
    op.drop_table("prediction_logs")
    op.drop_table("job_leases")
    op.drop_table("predictions")
    op.drop_table("api_keys")
    op.drop_table("users")
    op.drop_table("accounts")
