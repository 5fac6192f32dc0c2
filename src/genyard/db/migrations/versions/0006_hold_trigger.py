"""A hold takes its credits in one statement: a trigger on ``credit_holds`` inserts.

Before, a hold was two statements (insert the hold, then take its parts from the
balance); the trigger does the second inside the first, so submitting with billing on
costs one statement instead of two (bench/RESULTS.md, billing on SQLite).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_SET = "SET free = free - NEW.free, earned = earned - NEW.earned, paid = paid - NEW.paid"
_UPDATE = f"UPDATE credit_balances {_SET} WHERE account_id = NEW.account_id;"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            f"CREATE TRIGGER credit_holds_take AFTER INSERT ON credit_holds BEGIN {_UPDATE} END"
        )
        return
    op.execute(
        "CREATE FUNCTION credit_holds_take() RETURNS trigger AS $$ "
        f"BEGIN {_UPDATE} RETURN NEW; END $$ LANGUAGE plpgsql"
    )
    op.execute(
        "CREATE TRIGGER credit_holds_take AFTER INSERT ON credit_holds "
        "FOR EACH ROW EXECUTE FUNCTION credit_holds_take()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER credit_holds_take" + ("" if _sqlite() else " ON credit_holds"))
    if not _sqlite():
        op.execute("DROP FUNCTION credit_holds_take()")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"
