"""Daily and weekly bonuses, the pure parts: the periods and how much a claim grants.

A user claims a bonus (``POST /v1/credits/bonus``) once per period: the UTC day for
the daily bonus, the ISO week (Monday 00:00 UTC to Monday) for the weekly one. Bonuses
fill the ``free`` bucket, up to a cap (``GENYARD_FREE_CREDITS_MAX``, the balance's
``max``): a claim tops the bucket up to the cap at most, and grants nothing, leaving
the period unclaimed, when the bucket is already there. The once-per-period rule is
the database's (a primary key over account, kind and period; db/billing_repo.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from genyard.domain.billing import LedgerType


class BonusKind(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"

    @property
    def ledger_type(self) -> LedgerType:
        return LedgerType.DAILY_BONUS if self is BonusKind.DAILY else LedgerType.WEEKLY_BONUS


@dataclass(frozen=True, slots=True)
class Period:
    """One claimable period of a bonus kind: ``name`` is ``2026-11-21`` (a UTC day) or
    ``2026-W47`` (an ISO week); ``start`` and ``end`` are UNIX seconds."""

    kind: BonusKind
    name: str
    start: float
    end: float


def period_at(kind: BonusKind, now: float) -> Period:
    """The period of ``kind`` that ``now`` falls in."""
    day = datetime.fromtimestamp(now, UTC).date()
    if kind is BonusKind.DAILY:
        first, length, name = day, timedelta(days=1), day.isoformat()
    else:
        iso = day.isocalendar()
        first, length = day - timedelta(days=day.weekday()), timedelta(days=7)
        name = f"{iso.year}-W{iso.week:02d}"
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    return Period(kind, name, start.timestamp(), (start + length).timestamp())


@dataclass(frozen=True, slots=True)
class BonusPolicy:
    """Micro-credits each bonus grants (0: that bonus is off) and the cap bonuses fill
    the free bucket to (None: no cap)."""

    daily: int = 0
    weekly: int = 0
    free_max: int | None = None

    def amount(self, kind: BonusKind) -> int:
        return self.daily if kind is BonusKind.DAILY else self.weekly

    @property
    def enabled(self) -> bool:
        return self.daily > 0 or self.weekly > 0

    def grant(self, kind: BonusKind, free: int) -> int:
        """What a claim of ``kind`` grants when the free bucket holds ``free``."""
        amount = self.amount(kind)
        if self.free_max is None:
            return amount
        return max(0, min(amount, self.free_max - free))
