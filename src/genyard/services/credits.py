"""Credits for users and admins: balances, the transaction history, grants, gifts and
the daily and weekly bonuses. Holds and charges happen with the jobs (submit and
``transition()``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from genyard.config import Settings
from genyard.db import accounts_repo, billing_repo
from genyard.db.billing_repo import LedgerRow
from genyard.db.engine import Database
from genyard.domain.billing import GRANT_BUCKETS, Balance, Bucket, LedgerType, to_micro
from genyard.domain.bonuses import BonusKind, BonusPolicy, Period, period_at
from genyard.domain.pricing import credits
from genyard.errors import Conflict, InsufficientCredits, InvalidRequest, NotFound


def amount_of(value: str | int | float, field: str = "amount") -> int:
    """A positive credit amount from a request, as micro-credits; 400 naming ``field``."""
    try:
        return to_micro(value)
    except ValueError as exc:
        raise InvalidRequest(
            f"{field}: {exc}", {"errors": [{"field": field, "message": str(exc)}]}
        ) from None


def grant_type(value: str) -> LedgerType:
    allowed = ", ".join(t.value for t in GRANT_BUCKETS)
    try:
        kind = LedgerType(value)
    except ValueError:
        kind = None
    if kind not in GRANT_BUCKETS:
        raise InvalidRequest(
            f"type: {value!r} cannot be granted; one of {allowed}",
            {"errors": [{"field": "type", "message": f"must be one of {allowed}"}]},
        )
    assert kind is not None
    return kind


def bonus_policy(settings: Settings) -> BonusPolicy:
    """The bonuses the settings give (none when billing is off)."""
    if not settings.billing:
        return BonusPolicy()
    cap = to_micro(settings.free_credits_max, allow_zero=True)
    return BonusPolicy(
        daily=to_micro(settings.daily_bonus_credits, allow_zero=True),
        weekly=to_micro(settings.weekly_bonus_credits, allow_zero=True),
        free_max=cap or None,
    )


@dataclass(frozen=True, slots=True)
class BonusState:
    """One bonus kind for one account now: its period, whether that period was claimed,
    what a claim would grant now, and when it can next be claimed."""

    period: Period
    amount: int
    claimed: bool
    grant: int

    @property
    def claimable(self) -> bool:
        return not self.claimed and self.grant > 0

    @property
    def next_claimable_at(self) -> float | None:
        """The start of the next period once this one is claimed, else of this one
        (None: the bonus is off)."""
        if self.amount == 0:
            return None
        return self.period.end if self.claimed else self.period.start


@dataclass(frozen=True, slots=True)
class BonusClaim:
    """What ``POST /v1/credits/bonus`` did: the ledger rows granted now (none when
    every bonus was claimed already or the free bucket is at its cap), the balance
    after, and each bonus's state after."""

    granted: list[tuple[Period, LedgerRow]]
    balance: Balance
    bonuses: list[BonusState]


class CreditService:
    def __init__(
        self,
        db: Database,
        bonuses: BonusPolicy | None = None,
        *,
        billing: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.bonuses = bonuses or BonusPolicy()
        self.billing = billing
        #: What "now" is for bonus periods (tests move it to another day).
        self.clock = clock

    @classmethod
    def from_settings(cls, db: Database, settings: Settings) -> CreditService:
        return cls(db, bonus_policy(settings), billing=settings.billing)

    async def balance(self, account_id: str) -> Balance:
        async with self.db.read() as conn:
            return await billing_repo.balance(conn, account_id)

    async def transactions(
        self,
        account_id: str,
        *,
        limit: int,
        before: tuple[float, str] | None = None,
        type: str | None = None,
    ) -> list[LedgerRow]:
        async with self.db.read() as conn:
            return await billing_repo.transactions(
                conn, account_id, limit=limit, before=before, type=type
            )

    async def grant(
        self, user_name: str, amount: int, kind: LedgerType, note: str | None = None
    ) -> LedgerRow:
        """Add credits to a user's account (admins: CLI or API)."""
        async with self.db.write() as conn:
            user = await accounts_repo.user_by_name(conn, user_name)
            if user is None:
                raise NotFound(f"no user named {user_name!r}")
            return await billing_repo.credit(
                conn, user.account_id, kind, GRANT_BUCKETS[kind], amount, time.time(), note=note
            )

    async def gift(self, account_id: str, to_user: str, amount: int) -> LedgerRow:
        """Move credits to another user's account (they arrive as ``earned``)."""
        async with self.db.write() as conn:
            recipient = await accounts_repo.user_by_name(conn, to_user)
            if recipient is None:
                raise NotFound(f"no user named {to_user!r}")
            if recipient.account_id == account_id:
                raise InvalidRequest(
                    "to_user: a gift goes to another account",
                    {"errors": [{"field": "to_user", "message": "is this account"}]},
                )
            now = time.time()
            sent = await billing_repo.spend(
                conn, account_id, LedgerType.GIFT_SENT, amount, now, note=f"to {to_user}"
            )
            if sent is None:
                available = (await billing_repo.balance(conn, account_id)).total
                raise InsufficientCredits(
                    f"a gift of {credits(amount):g} credits; the account has "
                    f"{credits(available):g}",
                    {"required": credits(amount), "available": credits(available)},
                )
            await billing_repo.credit(
                conn, recipient.account_id, LedgerType.GIFT_RECEIVED, Bucket.EARNED, amount, now,
                note="gift",
            )  # fmt: skip
            return sent

    async def bonus_states(self, account_id: str, balance: Balance) -> list[BonusState]:
        """Each bonus kind's state for the account now (``balance``: its balance now)."""
        periods = [period_at(kind, self.clock()) for kind in BonusKind]
        async with self.db.read() as conn:
            claimed = await billing_repo.claimed_bonuses(conn, account_id, periods)
        return self._states(periods, claimed, balance.free)

    def _states(self, periods: list[Period], claimed: set[str], free: int) -> list[BonusState]:
        states = []
        for period in periods:
            grant = self.bonuses.grant(period.kind, free)
            amount = self.bonuses.amount(period.kind)
            states.append(BonusState(period, amount, period.kind.value in claimed, grant))
        return states

    async def claim_bonuses(self, account_id: str) -> BonusClaim:
        """Grant whichever of today's daily and this week's weekly bonus the account has
        not claimed, each at most once per period however many requests ask at once."""
        if not self.billing:
            raise Conflict(
                "there are no bonuses to claim: billing is off on this server "
                "(GENYARD_BILLING=off)",
                {"setting": "GENYARD_BILLING"},
            )
        if not self.bonuses.enabled:
            raise Conflict(
                "there are no bonuses to claim: this server grants none "
                "(GENYARD_DAILY_BONUS_CREDITS and GENYARD_WEEKLY_BONUS_CREDITS are 0)",
                {"settings": ["GENYARD_DAILY_BONUS_CREDITS", "GENYARD_WEEKLY_BONUS_CREDITS"]},
            )
        now = self.clock()
        periods = [period_at(kind, now) for kind in BonusKind]
        granted: list[tuple[Period, LedgerRow]] = []
        async with self.db.write() as conn:
            # The balance row stays locked to the end (SQLite: the writer lock), so the
            # grants' cap is reckoned on the free bucket as it is when they land.
            balance = await billing_repo.balance(conn, account_id, lock=True)
            free = balance.free
            for period in periods:
                grant = self.bonuses.grant(period.kind, free)
                if grant <= 0:
                    continue  # off, or the free bucket is at its cap: not claimed
                row = await billing_repo.claim_bonus(conn, account_id, period, grant, now)
                if row is not None:
                    granted.append((period, row))
                    free += grant
            claimed = await billing_repo.claimed_bonuses(conn, account_id, periods)
            balance = await billing_repo.balance(conn, account_id)
        return BonusClaim(granted, balance, self._states(periods, claimed, balance.free))
