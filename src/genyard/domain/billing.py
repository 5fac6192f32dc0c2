"""Credits, the pure parts: buckets, movement types, the draw order and the split of a
release (DESIGN.md "Money").

Amounts are integer micro-credits (``pricing.MICRO`` = 1 credit). A balance has three
spendable buckets, ``paid`` (purchases), ``free`` (bonuses) and ``earned`` (gifts
received), plus ``held``: credits set aside for jobs that have not ended. Spending
draws free, then earned, then paid credits; a release gives back the same buckets,
the ones drawn last first.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from genyard.domain.jobs import Job
from genyard.domain.pricing import MICRO, credits


class Bucket(StrEnum):
    PAID = "paid"
    FREE = "free"
    EARNED = "earned"


#: The order spending draws from the buckets.
DRAW_ORDER = (Bucket.FREE, Bucket.EARNED, Bucket.PAID)


class LedgerType(StrEnum):
    SPEND = "spend"
    PURCHASE = "purchase"
    DAILY_BONUS = "daily_bonus"
    WEEKLY_BONUS = "weekly_bonus"
    SIGNUP_BONUS = "signup_bonus"
    REFUND = "refund"
    GIFT_SENT = "gift_sent"
    GIFT_RECEIVED = "gift_received"


#: What an admin may grant, and the bucket each type fills.
GRANT_BUCKETS: dict[LedgerType, Bucket] = {
    LedgerType.PURCHASE: Bucket.PAID,
    LedgerType.DAILY_BONUS: Bucket.FREE,
    LedgerType.WEEKLY_BONUS: Bucket.FREE,
    LedgerType.SIGNUP_BONUS: Bucket.FREE,
}


@dataclass(frozen=True, slots=True)
class Parts:
    """An amount split over the buckets (all >= 0)."""

    paid: int = 0
    free: int = 0
    earned: int = 0

    @property
    def total(self) -> int:
        return self.paid + self.free + self.earned


@dataclass(frozen=True, slots=True)
class Balance:
    paid: int
    free: int
    earned: int
    held: int

    @property
    def total(self) -> int:
        """What can be spent now (holds are already taken out)."""
        return self.paid + self.free + self.earned

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": credits(self.total),
            "paid": credits(self.paid),
            "free": credits(self.free),
            "earned": credits(self.earned),
            "held": credits(self.held),
        }


def draw(balance: Balance, amount: int) -> Parts | None:
    """The parts ``amount`` takes from ``balance`` in the draw order; None when short."""
    if amount < 0:
        raise ValueError("amount must not be negative")
    if amount > balance.total:
        return None
    left = amount
    taken: dict[str, int] = {}
    for bucket in DRAW_ORDER:
        have = getattr(balance, bucket.value)
        take = min(have, left)
        taken[bucket.value] = take
        left -= take
    return Parts(**taken)


def settle(held: Parts, charge: int) -> tuple[Parts, Parts]:
    """Split a hold into what the charge spends and what goes back: the spend keeps the
    draw order (free first), so the release returns paid, then earned, then free."""
    charge = max(0, min(charge, held.total))
    back = held.total - charge
    returned: dict[str, int] = {}
    for bucket in reversed(DRAW_ORDER):
        give = min(getattr(held, bucket.value), back)
        returned[bucket.value] = give
        back -= give
    release = Parts(**returned)
    spent = Parts(held.paid - release.paid, held.free - release.free, held.earned - release.earned)
    return spent, release


def to_micro(amount: str | int | float | Decimal, *, allow_zero: bool = False) -> int:
    """Credits given by a person (``"12.5"``) as micro-credits; ValueError when it is
    not a positive amount (or zero, with ``allow_zero``) with at most six decimals."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise ValueError(f"{amount!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{amount!r} is not a number")
    micro = value * MICRO
    if micro != micro.to_integral_value() or micro < 0 or (micro == 0 and not allow_zero):
        raise ValueError(f"{amount!r} is not a positive amount of credits (at most 6 decimals)")
    return int(micro)


def job_usage(job: Job) -> dict[str, Any] | None:
    """A job's ``usage`` as every face shows it: the units the provider reported, plus
    ``credits_held`` (the worst case held at submit) and ``credits_charged`` (once the
    job ended; 0 when it failed or was canceled). None when there is nothing to show."""
    usage = dict(job.usage or {})
    if job.credits_held is not None:
        usage["credits_held"] = credits(job.credits_held)
        if job.status.is_terminal():
            usage["credits_charged"] = credits(job.credits_charged or 0)
    return usage or None
