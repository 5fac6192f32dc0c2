"""SQL for credits: balances, the ledger and holds (SQLAlchemy Core).

Every balance change is one conditional UPDATE of the account's ``credit_balances``
row: spending states the exact parts it takes and the row must still have them
(``WHERE free >= :free AND ...``), so two requests that read the same balance cannot
both spend it; the loser re-reads and tries again (or finds itself short).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from genyard.db.engine import DbConnection
from genyard.db.tables import credit_balances, credit_bonus_claims, credit_holds, credit_ledger
from genyard.domain.billing import Balance, Bucket, LedgerType, Parts, draw, settle
from genyard.domain.bonuses import Period
from genyard.ids import new_id


@dataclass(frozen=True, slots=True)
class LedgerRow:
    id: str
    type: str
    amount: int
    parts: Parts
    balance_after: int
    prediction_id: str | None
    note: str | None
    created_at: float


async def create_balance(conn: DbConnection, account_id: str) -> None:
    await conn.execute(
        credit_balances.insert().values(account_id=account_id, paid=0, free=0, earned=0)
    )


async def balance(conn: DbConnection, account_id: str, *, lock: bool = False) -> Balance:
    """The account's balance; ``lock`` holds its row until the transaction ends
    (PostgreSQL: concurrent spends then queue instead of retrying)."""
    query = sa.select(
        credit_balances.c.paid, credit_balances.c.free, credit_balances.c.earned
    ).where(credit_balances.c.account_id == account_id)
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        raise LookupError(f"account {account_id} has no balance row")
    held = await conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(credit_holds.c.amount), 0)).where(
            credit_holds.c.account_id == account_id
        )
    )
    return Balance(row.paid, row.free, row.earned, int(held.scalar_one()))


_INSERT_LEDGER = credit_ledger.insert()


def _ledger_values(
    account_id: str,
    type: LedgerType,
    parts: Parts,
    sign: int,
    balance_after: int,
    now: float,
    *,
    prediction_id: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """One ``credit_ledger`` row: ``parts`` moved in (``sign`` 1) or out (-1)."""
    return {
        "id": new_id("txn"),
        "account_id": account_id,
        "type": type.value,
        "amount": sign * parts.total,
        "paid": sign * parts.paid,
        "free": sign * parts.free,
        "earned": sign * parts.earned,
        "balance_after": balance_after,
        "prediction_id": prediction_id,
        "note": note,
        "created_at": now,
    }


def _row_of(m: Mapping[Any, Any]) -> LedgerRow:
    """A ledger row's columns (signed parts) as a :class:`LedgerRow` (parts as moved)."""
    parts = Parts(abs(m["paid"]), abs(m["free"]), abs(m["earned"]))
    return LedgerRow(
        m["id"], m["type"], m["amount"], parts, m["balance_after"], m["prediction_id"],
        m["note"], m["created_at"],
    )  # fmt: skip


async def _record(conn: DbConnection, values: dict[str, Any]) -> LedgerRow:
    await conn.execute(_INSERT_LEDGER, values)
    return _row_of(values)


#: What can be spent: the three buckets (an UPDATE's RETURNING gives it after the change).
_SPENDABLE_AFTER = credit_balances.c.paid + credit_balances.c.free + credit_balances.c.earned


async def credit(
    conn: DbConnection,
    account_id: str,
    type: LedgerType,
    bucket: Bucket,
    amount: int,
    now: float,
    *,
    note: str | None = None,
) -> LedgerRow:
    """Add ``amount`` to one bucket and record it."""
    column = credit_balances.c[bucket.value]
    after = (
        await conn.execute(
            credit_balances.update()
            .where(credit_balances.c.account_id == account_id)
            .values({column: column + amount})
            .returning(_SPENDABLE_AFTER)
        )
    ).scalar_one_or_none()
    if after is None:
        raise LookupError(f"account {account_id} has no balance row")
    parts = Parts(**{bucket.value: amount})
    return await _record(conn, _ledger_values(account_id, type, parts, 1, after, now, note=note))


async def spend(
    conn: DbConnection,
    account_id: str,
    type: LedgerType,
    amount: int,
    now: float,
    *,
    note: str | None = None,
) -> LedgerRow | None:
    """Take ``amount`` now (a gift sent) in the draw order; None when the balance is
    short. The balance row is locked from the read to the update (SQLite: the writer
    lock), so the conditional UPDATE cannot miss."""
    parts = draw(await balance(conn, account_id, lock=True), amount)
    if parts is None:
        return None
    c = credit_balances.c
    after = (
        await conn.execute(
            credit_balances.update()
            .where(
                c.account_id == account_id,
                c.paid >= parts.paid,
                c.free >= parts.free,
                c.earned >= parts.earned,
            )
            .values(
                paid=c.paid - parts.paid, free=c.free - parts.free, earned=c.earned - parts.earned
            )
            .returning(_SPENDABLE_AFTER)
        )
    ).scalar_one_or_none()
    if after is None:
        raise RuntimeError(f"the balance of {account_id} changed under a spend")
    return await _record(conn, _ledger_values(account_id, type, parts, -1, after, now, note=note))


# A hold in one statement, built once: it reads the balance (locking its row on
# PostgreSQL; SQLite's writer lock is held) and writes the hold with the parts the draw
# order takes, computed in SQL from that row; nothing is written when the balance is
# short. The trigger ``credit_holds_take`` (migration 0006) takes exactly those parts
# from the buckets within the same statement.
_A = sa.bindparam("p_amount", type_=sa.BigInteger)
_B = credit_balances.c
_HOLD_PARTS = {
    "free": sa.case((_B.free >= _A, _A), else_=_B.free),
    "earned": sa.case(
        (_B.free >= _A, 0), (_B.free + _B.earned >= _A, _A - _B.free), else_=_B.earned
    ),
    "paid": sa.case((_B.free + _B.earned >= _A, 0), else_=_A - _B.free - _B.earned),
}
_INSERT_HOLD = credit_holds.insert().from_select(
    ["prediction_id", "account_id", "amount", "free", "earned", "paid", "created_at"],
    sa.select(
        sa.bindparam("p_job_id", type_=sa.String),
        _B.account_id,
        _A,
        _HOLD_PARTS["free"],
        _HOLD_PARTS["earned"],
        _HOLD_PARTS["paid"],
        sa.bindparam("p_now", type_=sa.Double),
    )
    .where(
        _B.account_id == sa.bindparam("p_account_id"),
        _B.paid + _B.free + _B.earned >= _A,
    )
    .with_for_update(),
)


async def hold(
    conn: DbConnection, account_id: str, prediction_id: str, amount: int, now: float
) -> bool:
    """Set ``amount`` aside for a job; False (nothing changed) when the balance is short."""
    params = {
        "p_job_id": prediction_id,
        "p_account_id": account_id,
        "p_amount": amount,
        "p_now": now,
    }
    return (await conn.execute(_INSERT_HOLD, params)).rowcount == 1


_RELEASE = (
    credit_balances.update()
    .where(_B.account_id == sa.bindparam("p_account_id"))
    .values(
        paid=_B.paid + sa.bindparam("p_paid"),
        free=_B.free + sa.bindparam("p_free"),
        earned=_B.earned + sa.bindparam("p_earned"),
    )
    .returning(_B.paid, _B.free, _B.earned)
)


async def _spendable(conn: DbConnection, account_ids: list[str]) -> dict[str, int]:
    if not account_ids:
        return {}
    rows = await conn.execute(
        sa.select(_B.account_id, _SPENDABLE_AFTER.label("spendable")).where(
            _B.account_id.in_(account_ids)
        )
    )
    return {row.account_id: int(row.spendable) for row in rows}


async def settle_holds(conn: DbConnection, charges: Mapping[str, int], now: float) -> None:
    """End the holds of jobs that ended: spend each job's charge (never more than it
    held) and give the rest back to the buckets it came from. Set-based, so a worker
    settles a whole batch with one DELETE, one UPDATE per account that gets credits
    back (in account order, so concurrent batches never deadlock), one SELECT of the
    other accounts' balances (for the ledger's ``balance_after``) and one INSERT. Jobs
    that held nothing are skipped."""
    if not charges:
        return
    dropped = await conn.execute(
        credit_holds.delete()
        .where(credit_holds.c.prediction_id.in_(list(charges)))
        .returning(
            credit_holds.c.prediction_id,
            credit_holds.c.account_id,
            credit_holds.c.amount,
            credit_holds.c.paid,
            credit_holds.c.free,
            credit_holds.c.earned,
        )
    )
    by_account: dict[str, list[tuple[str, Parts, Parts]]] = {}
    for row in sorted(dropped, key=lambda r: r.prediction_id):
        spent, back = settle(Parts(row.paid, row.free, row.earned), charges[row.prediction_id])
        by_account.setdefault(row.account_id, []).append((row.prediction_id, spent, back))
    back_totals = {
        account_id: Parts(
            sum(b.paid for _, _, b in settled),
            sum(b.free for _, _, b in settled),
            sum(b.earned for _, _, b in settled),
        )
        for account_id, settled in by_account.items()
    }
    spendable: dict[str, int] = {}
    for account_id, back_total in sorted(back_totals.items()):  # one lock order: no deadlocks
        if back_total.total:
            after = (
                await conn.execute(
                    _RELEASE,
                    {
                        "p_account_id": account_id,
                        "p_paid": back_total.paid,
                        "p_free": back_total.free,
                        "p_earned": back_total.earned,
                    },
                )
            ).one()
            spendable[account_id] = after.paid + after.free + after.earned
    # Charged exactly what was held: no balance row to touch (or lock), one read for all.
    spendable |= await _spendable(conn, sorted(set(back_totals) - set(spendable)))
    ledger: list[dict[str, Any]] = []
    for account_id, settled in sorted(by_account.items()):
        # Each spend row shows the spendable balance once its own release was given back.
        running = spendable[account_id] - back_totals[account_id].total
        for job_id, spent, back in settled:
            running += back.total
            if spent.total:
                ledger.append(
                    _ledger_values(
                        account_id,
                        LedgerType.SPEND,
                        spent,
                        -1,
                        running,
                        now,
                        prediction_id=job_id,
                    )
                )
    if ledger:
        await conn.execute(_INSERT_LEDGER, ledger)


# A bonus period's claim row, or nothing when the account has it already: the same
# statement on both databases (``INSERT ... ON CONFLICT DO NOTHING RETURNING``).
_CLAIM_BONUS = {
    name: dialect.insert(credit_bonus_claims)
    .on_conflict_do_nothing()
    .returning(credit_bonus_claims.c.period)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


async def claim_bonus(
    conn: DbConnection, account_id: str, period: Period, amount: int, now: float
) -> LedgerRow | None:
    """Grant a bonus period into the ``free`` bucket: the claim row, the balance update
    and the ledger row (``daily_bonus`` or ``weekly_bonus``, its note the period) in
    the caller's transaction. None, with nothing written, when the account has claimed
    that period already: the claim row's primary key decides, so two transactions
    claiming at once grant it once (on PostgreSQL the second waits for the first's
    commit, then finds the row)."""
    inserted = await conn.execute(
        _CLAIM_BONUS[conn.dialect.name],
        {
            "account_id": account_id,
            "kind": period.kind.value,
            "period": period.name,
            "amount": amount,
            "created_at": now,
        },
    )
    if inserted.first() is None:
        return None
    return await credit(
        conn, account_id, period.kind.ledger_type, Bucket.FREE, amount, now, note=period.name
    )


async def claimed_bonuses(conn: DbConnection, account_id: str, periods: list[Period]) -> set[str]:
    """The kinds among ``periods`` the account has claimed."""
    if not periods:
        return set()
    c = credit_bonus_claims.c
    rows = await conn.execute(
        sa.select(c.kind, c.period).where(
            c.account_id == account_id, c.period.in_([p.name for p in periods])
        )
    )
    wanted = {(p.kind.value, p.name) for p in periods}
    return {r.kind for r in rows if (r.kind, r.period) in wanted}


async def transactions(
    conn: DbConnection,
    account_id: str,
    *,
    limit: int,
    before: tuple[float, str] | None = None,
    type: str | None = None,
) -> list[LedgerRow]:
    """Newest first."""
    t = credit_ledger.c
    query = sa.select(credit_ledger).where(t.account_id == account_id)
    if type is not None:
        query = query.where(t.type == type)
    if before is not None:
        query = query.where(
            sa.or_(t.created_at < before[0], sa.and_(t.created_at == before[0], t.id < before[1]))
        )
    rows = await conn.execute(query.order_by(t.created_at.desc(), t.id.desc()).limit(limit))
    return [_row_of(r._mapping) for r in rows]


async def ledger_sum(conn: DbConnection, account_id: str) -> int:
    total = await conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(credit_ledger.c.amount), 0)).where(
            credit_ledger.c.account_id == account_id
        )
    )
    return int(total.scalar_one())
