"""SQL for credits: balances, the ledger and holds (SQLAlchemy Core).

Every balance change is one conditional UPDATE of the account's ``credit_balances``
row: spending states the exact parts it takes and the row must still have them
(``WHERE free >= :free AND ...``), so two requests that read the same balance cannot
both spend it; the loser re-reads and tries again (or finds itself short).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from genyard.db.engine import DbConnection
from genyard.db.tables import credit_balances, credit_holds, credit_ledger, predictions
from genyard.domain.billing import Balance, Bucket, LedgerType, Parts, draw, settle
from genyard.ids import new_id

#: How often a spend re-reads a balance another request changed under it.
_SPEND_TRIES = 20


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
        credit_balances.insert().values(account_id=account_id, paid=0, free=0, earned=0, held=0)
    )


async def balance(conn: DbConnection, account_id: str, *, lock: bool = False) -> Balance:
    """The account's balance; ``lock`` holds its row until the transaction ends
    (PostgreSQL: concurrent spends then queue instead of retrying)."""
    query = sa.select(
        credit_balances.c.paid,
        credit_balances.c.free,
        credit_balances.c.earned,
        credit_balances.c.held,
    ).where(credit_balances.c.account_id == account_id)
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        raise LookupError(f"account {account_id} has no balance row")
    return Balance(row.paid, row.free, row.earned, row.held)


async def _ledger(
    conn: DbConnection,
    account_id: str,
    type: LedgerType,
    signed: Parts,
    sign: int,
    now: float,
    *,
    prediction_id: str | None = None,
    note: str | None = None,
) -> LedgerRow:
    after = await balance(conn, account_id)
    row = LedgerRow(
        new_id("txn"),
        type.value,
        sign * signed.total,
        signed,
        after.total,
        prediction_id,
        note,
        now,
    )
    await conn.execute(
        credit_ledger.insert().values(
            id=row.id,
            account_id=account_id,
            type=row.type,
            amount=row.amount,
            paid=sign * signed.paid,
            free=sign * signed.free,
            earned=sign * signed.earned,
            balance_after=row.balance_after,
            prediction_id=prediction_id,
            note=note,
            created_at=now,
        )
    )
    return row


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
    result = await conn.execute(
        credit_balances.update()
        .where(credit_balances.c.account_id == account_id)
        .values({column: column + amount})
    )
    if result.rowcount != 1:
        raise LookupError(f"account {account_id} has no balance row")
    parts = Parts(**{bucket.value: amount})
    return await _ledger(conn, account_id, type, parts, 1, now, note=note)


async def _take(conn: DbConnection, account_id: str, amount: int, *, hold: bool) -> Parts | None:
    """Take ``amount`` from the buckets (into ``held`` when ``hold``); None when short."""
    for _ in range(_SPEND_TRIES):
        current = await balance(conn, account_id, lock=True)
        parts = draw(current, amount)
        if parts is None:
            return None
        c = credit_balances.c
        values: dict[Any, Any] = {
            c.paid: c.paid - parts.paid,
            c.free: c.free - parts.free,
            c.earned: c.earned - parts.earned,
        }
        if hold:
            values[c.held] = c.held + amount
        result = await conn.execute(
            credit_balances.update()
            .where(
                c.account_id == account_id,
                c.paid >= parts.paid,
                c.free >= parts.free,
                c.earned >= parts.earned,
            )
            .values(values)
        )
        if result.rowcount == 1:
            return parts
    raise RuntimeError(f"the balance of {account_id} kept changing; try again")


async def spend(
    conn: DbConnection,
    account_id: str,
    type: LedgerType,
    amount: int,
    now: float,
    *,
    note: str | None = None,
) -> LedgerRow | None:
    """Take ``amount`` now (a gift sent); None when the balance is short."""
    parts = await _take(conn, account_id, amount, hold=False)
    if parts is None:
        return None
    return await _ledger(conn, account_id, type, parts, -1, now, note=note)


async def hold(
    conn: DbConnection, account_id: str, prediction_id: str, amount: int, now: float
) -> bool:
    """Set ``amount`` aside for a job; False (nothing changed) when the balance is short."""
    parts = await _take(conn, account_id, amount, hold=True)
    if parts is None:
        return False
    await conn.execute(
        credit_holds.insert().values(
            prediction_id=prediction_id,
            account_id=account_id,
            amount=amount,
            paid=parts.paid,
            free=parts.free,
            earned=parts.earned,
            created_at=now,
        )
    )
    return True


_DROP_HOLD = (
    credit_holds.delete()
    .where(credit_holds.c.prediction_id == sa.bindparam("job_id"))
    .returning(
        credit_holds.c.account_id,
        credit_holds.c.amount,
        credit_holds.c.paid,
        credit_holds.c.free,
        credit_holds.c.earned,
    )
)


async def settle_hold(conn: DbConnection, job_id: str, charge: int, now: float) -> int | None:
    """End a job's hold: spend ``charge`` of it (never more than was held) and give the
    rest back to the buckets it came from. Returns what was charged; None when the job
    held nothing."""
    row = (await conn.execute(_DROP_HOLD, {"job_id": job_id})).first()
    if row is None:
        return None
    held = Parts(row.paid, row.free, row.earned)
    spent, back = settle(held, charge)
    c = credit_balances.c
    await conn.execute(
        credit_balances.update()
        .where(c.account_id == row.account_id)
        .values(
            {
                c.paid: c.paid + back.paid,
                c.free: c.free + back.free,
                c.earned: c.earned + back.earned,
                c.held: c.held - row.amount,
            }
        )
    )
    await conn.execute(
        predictions.update().where(predictions.c.id == job_id).values(credits_charged=spent.total)
    )
    if spent.total:
        await _ledger(conn, row.account_id, LedgerType.SPEND, spent, -1, now, prediction_id=job_id)
    return spent.total


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
    return [
        LedgerRow(
            r.id,
            r.type,
            r.amount,
            Parts(abs(r.paid), abs(r.free), abs(r.earned)),
            r.balance_after,
            r.prediction_id,
            r.note,
            r.created_at,
        )
        for r in rows
    ]


async def ledger_sum(conn: DbConnection, account_id: str) -> int:
    total = await conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(credit_ledger.c.amount), 0)).where(
            credit_ledger.c.account_id == account_id
        )
    )
    return int(total.scalar_one())
