"""Bonus periods and grants (domain/bonuses.py), and the claim row that makes a period
granted once, against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import sqlalchemy as sa

from genyard.db import accounts_repo, billing_repo
from genyard.db.accounts_repo import UserRow
from genyard.db.engine import Database
from genyard.db.tables import credit_bonus_claims
from genyard.domain.bonuses import BonusKind, BonusPolicy, period_at


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_a_daily_period_is_a_utc_day() -> None:
    period = period_at(BonusKind.DAILY, ts("2026-11-18T23:59:59.9"))
    assert period.name == "2026-11-18"
    assert (period.start, period.end) == (ts("2026-11-18T00:00"), ts("2026-11-19T00:00"))
    assert period_at(BonusKind.DAILY, ts("2026-11-19T00:00")).name == "2026-11-19"


def test_a_weekly_period_is_an_iso_week_from_monday() -> None:
    wednesday = period_at(BonusKind.WEEKLY, ts("2026-11-18T10:00"))
    assert wednesday.name == "2026-W47"
    assert (wednesday.start, wednesday.end) == (ts("2026-11-16T00:00"), ts("2026-11-23T00:00"))
    assert period_at(BonusKind.WEEKLY, ts("2026-11-22T23:59:59")).name == "2026-W47"
    assert period_at(BonusKind.WEEKLY, ts("2026-11-23T00:00")).name == "2026-W48"
    # across a new year: the week keeps its ISO year (2026 has 53 weeks)
    new_year = period_at(BonusKind.WEEKLY, ts("2027-01-01T12:00"))
    assert new_year.name == "2026-W53"
    assert new_year.start == ts("2026-12-28T00:00")
    assert period_at(BonusKind.WEEKLY, ts("2027-01-04T00:00")).name == "2027-W01"


def test_grants_fill_the_free_bucket_up_to_the_cap() -> None:
    policy = BonusPolicy(daily=1_000_000, weekly=5_000_000, free_max=3_000_000)
    assert policy.grant(BonusKind.DAILY, 0) == 1_000_000
    assert policy.grant(BonusKind.WEEKLY, 1_000_000) == 2_000_000  # cut to the cap
    assert policy.grant(BonusKind.DAILY, 3_000_000) == 0
    assert policy.grant(BonusKind.DAILY, 9_000_000) == 0  # above it (a grant, a signup bonus)
    assert BonusPolicy(daily=1, free_max=None).grant(BonusKind.DAILY, 10**12) == 1
    assert BonusPolicy(weekly=1).grant(BonusKind.DAILY, 0) == 0
    assert not BonusPolicy().enabled and BonusPolicy(weekly=1).enabled


async def test_concurrent_claims_of_a_period_grant_it_once(migrated_db: Database) -> None:
    """Twenty transactions claim the same day at once, with no other lock between them
    (PostgreSQL: twenty connections): the claim row's key lets one through."""
    db = migrated_db
    user = UserRow("user_1", "ann", "acct_1", False, "free", time.time())
    async with db.write() as conn:
        await accounts_repo.insert_user(conn, user)
    day = period_at(BonusKind.DAILY, ts("2026-11-18T10:00"))

    async def claim() -> billing_repo.LedgerRow | None:
        async with db.write() as conn:
            return await billing_repo.claim_bonus(conn, user.account_id, day, 1_000_000, 1.0)

    rows = await asyncio.gather(*(claim() for _ in range(20)))
    granted = [r for r in rows if r is not None]
    assert len(granted) == 1
    assert (granted[0].type, granted[0].note, granted[0].amount) == (
        "daily_bonus", "2026-11-18", 1_000_000,
    )  # fmt: skip
    async with db.read() as conn:
        balance = await billing_repo.balance(conn, user.account_id)
        assert (balance.free, balance.paid, balance.earned) == (1_000_000, 0, 0)
        assert await billing_repo.ledger_sum(conn, user.account_id) == 1_000_000
        claims = (await conn.execute(sa.select(credit_bonus_claims))).all()
        assert [(c.kind, c.period, c.amount) for c in claims] == [
            ("daily", "2026-11-18", 1_000_000)
        ]
        week = period_at(BonusKind.WEEKLY, ts("2026-11-18T10:00"))
        assert await billing_repo.claimed_bonuses(conn, user.account_id, [day, week]) == {"daily"}
