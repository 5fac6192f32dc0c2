"""Credits for users and admins: balances, the transaction history, grants and gifts.
Holds and charges happen with the jobs (submit and ``transition()``)."""

from __future__ import annotations

import time

from genyard.db import accounts_repo, billing_repo
from genyard.db.billing_repo import LedgerRow
from genyard.db.engine import Database
from genyard.domain.billing import GRANT_BUCKETS, Balance, Bucket, LedgerType, to_micro
from genyard.domain.pricing import credits
from genyard.errors import InsufficientCredits, InvalidRequest, NotFound


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


class CreditService:
    def __init__(self, db: Database) -> None:
        self.db = db

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
