"""Credits: balances (one row per account), the ledger, holds; a job's held and
charged credits.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credit_balances",
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("paid", sa.BigInteger, nullable=False),
        sa.Column("free", sa.BigInteger, nullable=False),
        sa.Column("earned", sa.BigInteger, nullable=False),
        sa.CheckConstraint(
            "paid >= 0 AND free >= 0 AND earned >= 0", name=op.f("ck_credit_balances_nonneg")
        ),
    )
    # Accounts made before credits existed start at zero.
    op.execute(
        "INSERT INTO credit_balances (account_id, paid, free, earned) "
        "SELECT id, 0, 0, 0 FROM accounts"
    )
    op.create_table(
        "credit_ledger",
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
    )
    op.create_index(
        "ix_credit_ledger_account_created", "credit_ledger", ["account_id", "created_at"]
    )
    op.create_table(
        "credit_holds",
        sa.Column(
            "prediction_id",
            sa.String(40),
            sa.ForeignKey("predictions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("paid", sa.BigInteger, nullable=False),
        sa.Column("free", sa.BigInteger, nullable=False),
        sa.Column("earned", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    op.create_index("ix_credit_holds_account_id", "credit_holds", ["account_id"])
    op.add_column("predictions", sa.Column("credits_held", sa.BigInteger, nullable=True))
    op.add_column("predictions", sa.Column("credits_charged", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("credits_charged")
        batch.drop_column("credits_held")
    op.drop_table("credit_holds")
    op.drop_table("credit_ledger")
    op.drop_table("credit_balances")
