"""Tables, as SQLAlchemy Core metadata. Migrations under ``migrations/`` create them.

Timestamps are UNIX seconds (``Double``): portable across SQLite and PostgreSQL,
cheap to compare on the queue's hot path, rendered as ISO 8601 by the faces.
Statuses are VARCHAR with a CHECK constraint, not a database enum.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("tier", sa.String(40), nullable=False, default="free"),
    sa.Column("created_at", sa.Double, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("prefix", sa.String(20), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scopes", sa.String(200), nullable=False, default=""),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("last_used_at", sa.Double, nullable=True),
    sa.Column("revoked_at", sa.Double, nullable=True),
)

JOB_STATUSES = ("pending", "processing", "succeeded", "failed", "canceled")

predictions = sa.Table(
    "predictions",
    metadata,
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
    sa.Column("progress", sa.Integer, nullable=False, default=0),
    sa.Column("is_public", sa.Boolean, nullable=False, default=False),
    sa.Column("output_folder", sa.String(256), nullable=True),
    sa.Column("webhook_url", sa.Text, nullable=True),
    sa.Column("webhook_events", sa.String(200), nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=True),
    sa.Column("request_hash", sa.String(64), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("usage", sa.Text, nullable=True),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("queue_deadline", sa.Double, nullable=True),
    sa.Column("started_at", sa.Double, nullable=True),
    sa.Column("completed_at", sa.Double, nullable=True),
    # (0003) Micro-credits held at submit and charged at the end (NULL: not billed).
    sa.Column("credits_held", sa.BigInteger, nullable=True),
    sa.Column("credits_charged", sa.BigInteger, nullable=True),
    # (0007) The tasks face's id (``task-unified-<unix time>-<8 chars>``) of a job it made.
    sa.Column("task_id", sa.String(40), nullable=True),
    sa.CheckConstraint(
        "status IN ('pending', 'processing', 'succeeded', 'failed', 'canceled')",
        name="status",
    ),
    sa.Index("ix_predictions_queue", "status", "model", "created_at"),
    sa.Index("ix_predictions_account_created", "account_id", "created_at"),
    # The pending cap counts an account's pending jobs at every submit.
    sa.Index("ix_predictions_account_status", "account_id", "status"),
    sa.Index(
        "uq_predictions_account_idempotency",
        "account_id",
        "idempotency_key",
        unique=True,
    ),
    sa.Index("uq_predictions_task_id", "task_id", unique=True),
)

# The narrow lease table: heartbeats rewrite these short rows, never the wide job row.
job_leases = sa.Table(
    "job_leases",
    metadata,
    sa.Column(
        "prediction_id",
        sa.String(40),
        sa.ForeignKey("predictions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("token", sa.String(40), nullable=False),
    sa.Column("worker_id", sa.String(80), nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False, index=True),
)

# Append-only job logs: GET renders them as text; streams read them back later.
prediction_logs = sa.Table(
    "prediction_logs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "prediction_id",
        sa.String(40),
        sa.ForeignKey("predictions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("line", sa.Text, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
)

# Append-only output pieces a run streams (a chat model's tokens, RunContext.emit):
# streams send them as ``delta`` events and resume after a row id.
prediction_output_deltas = sa.Table(
    "prediction_output_deltas",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "prediction_id",
        sa.String(40),
        sa.ForeignKey("predictions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
)

DELIVERY_STATUSES = ("pending", "delivered", "failed")

# The webhook outbox: transition() and claim() write a row per event in the job's own
# transaction; dispatchers claim due rows (next_attempt_at) and record each attempt.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column(
        "prediction_id",
        sa.String(40),
        sa.ForeignKey("predictions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("account_id", sa.String(40), nullable=False),
    sa.Column("event", sa.String(20), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Double, nullable=True),
    # The body, rendered at the first attempt: retries and redeliveries send these bytes.
    sa.Column("body", sa.Text, nullable=True),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("delivered_at", sa.Double, nullable=True),
    sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
    sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
)

# One row per HTTP attempt of a delivery: the delivery log.
webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "delivery_id",
        sa.String(40),
        sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("attempted_at", sa.Double, nullable=False),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
)

# Which generation of an account's webhook secret signs (no row: generation 0). The
# secret itself is derived from the server secret, never stored.
webhook_secrets = sa.Table(
    "webhook_secrets",
    metadata,
    sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("rotated_at", sa.Double, nullable=False),
)

# Credits (micro-credits, integers). One balance row per account, created with the
# account: the spendable buckets. Every spend is one conditional UPDATE of this row, so
# no two requests can spend the same credits. What holds keep aside is the sum of the
# account's credit_holds (not a column here: ending a job that is charged exactly its
# hold then touches no balance row, which concurrent submits lock).
credit_balances = sa.Table(
    "credit_balances",
    metadata,
    sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("paid", sa.BigInteger, nullable=False),
    sa.Column("free", sa.BigInteger, nullable=False),
    sa.Column("earned", sa.BigInteger, nullable=False),
    sa.CheckConstraint("paid >= 0 AND free >= 0 AND earned >= 0", name="nonneg"),
)

# The ledger users see: one row per movement of spendable credits (grants, bonuses,
# spends, refunds, gifts); ``paid``/``free``/``earned`` are the signed parts per bucket.
credit_ledger = sa.Table(
    "credit_ledger",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("type", sa.String(20), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("paid", sa.BigInteger, nullable=False),
    sa.Column("free", sa.BigInteger, nullable=False),
    sa.Column("earned", sa.BigInteger, nullable=False),
    sa.Column("balance_after", sa.BigInteger, nullable=False),
    sa.Column("prediction_id", sa.String(40), nullable=True),
    sa.Column("note", sa.String(200), nullable=True),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Index("ix_credit_ledger_account_created", "account_id", "created_at"),
)

# Credits held for a job until it ends, and which buckets they came from (a release
# refunds the same buckets). Outside the ledger: a hold is not a movement users see.
# Inserting a hold takes its parts from the balance in the same statement (the trigger
# ``credit_holds_take``, made by migration 0006), so a hold is one conditional statement:
# billing_repo.hold.
credit_holds = sa.Table(
    "credit_holds",
    metadata,
    sa.Column(
        "prediction_id",
        sa.String(40),
        sa.ForeignKey("predictions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("account_id", sa.String(40), nullable=False, index=True),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("paid", sa.BigInteger, nullable=False),
    sa.Column("free", sa.BigInteger, nullable=False),
    sa.Column("earned", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
)

# (0005) Daily and weekly bonuses claimed: one row per account, kind (``daily`` or
# ``weekly``) and period (``2026-11-21``, ``2026-W47``). The primary key is what makes a
# bonus granted once per period, however many requests claim it at once; the row is
# written in the transaction of the ledger row and balance update it goes with.
credit_bonus_claims = sa.Table(
    "credit_bonus_claims",
    metadata,
    sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("kind", sa.String(10), primary_key=True),
    sa.Column("period", sa.String(10), primary_key=True),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
)
