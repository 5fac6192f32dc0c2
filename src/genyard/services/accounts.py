"""Users and API keys: create, list, revoke, authenticate."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from genyard.config import Settings
from genyard.db import accounts_repo as repo
from genyard.db import billing_repo
from genyard.db.accounts_repo import KeyRow, UserRow
from genyard.db.engine import Database
from genyard.domain.accounts import (
    LAST_USED_RESOLUTION,
    MAX_ACTIVE_KEYS,
    TIERS,
    Principal,
    Scope,
    display_prefix,
    effective_scopes,
    hash_api_key,
    looks_like_key,
    new_api_key,
)
from genyard.domain.billing import Bucket, LedgerType, to_micro
from genyard.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized
from genyard.ids import new_id


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A freshly created key: ``secret`` is shown once and never stored."""

    row: KeyRow
    secret: str


class AccountService:
    def __init__(self, db: Database, *, signup_bonus: int = 0) -> None:
        """``signup_bonus``: micro-credits every new user starts with."""
        self.db = db
        self.signup_bonus = signup_bonus

    @classmethod
    def from_settings(cls, db: Database, settings: Settings) -> AccountService:
        return cls(db, signup_bonus=to_micro(settings.signup_bonus_credits, allow_zero=True))

    async def has_users(self) -> bool:
        async with self.db.read() as conn:
            return await repo.count_users(conn) > 0

    async def create_user(self, name: str, *, tier: str = "free", admin: bool = False) -> UserRow:
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidRequest("name must be 1-200 characters", {"field": "name"})
        if tier not in TIERS:
            raise InvalidRequest(
                f"tier must be one of {', '.join(TIERS)}", {"field": "tier", "allowed": TIERS}
            )
        user = UserRow(new_id("user"), name, new_id("acct"), admin, tier, time.time())
        taken = Conflict(f"a user named {name!r} already exists", {"field": "name"})
        try:
            async with self.db.write() as conn:
                if await repo.user_by_name(conn, name):
                    raise taken
                await repo.insert_user(conn, user)
                if self.signup_bonus:
                    await billing_repo.credit(
                        conn, user.account_id, LedgerType.SIGNUP_BONUS, Bucket.FREE,
                        self.signup_bonus, user.created_at,
                    )  # fmt: skip
        except IntegrityError:
            raise taken from None  # a concurrent create won (PostgreSQL, read committed)
        return user

    async def user(self, name: str) -> UserRow:
        async with self.db.read() as conn:
            user = await repo.user_by_name(conn, name)
        if user is None:
            raise NotFound(f"no user named {name!r}")
        return user

    async def users(self) -> list[UserRow]:
        async with self.db.read() as conn:
            return await repo.all_users(conn)

    async def create_key(
        self,
        user: UserRow,
        *,
        name: str = "default",
        scopes: frozenset[Scope] = frozenset(),
        granted_by: Principal | None = None,
    ) -> IssuedKey:
        """Issue a key. ``granted_by`` (an API caller) cannot grant scopes it lacks."""
        if granted_by is not None:
            wanted = effective_scopes(scopes)
            missing = wanted - effective_scopes(granted_by.scopes)
            if missing:
                raise Forbidden(
                    "a key cannot grant scopes it does not have: " + ", ".join(sorted(missing)),
                    {"field": "scopes", "missing": sorted(missing)},
                )
        if not name.strip() or len(name) > 200:
            raise InvalidRequest("name must be 1-200 characters", {"field": "name"})
        secret = new_api_key()
        row = KeyRow(
            id=new_id("key"),
            user_id=user.id,
            name=name.strip(),
            prefix=display_prefix(secret),
            scopes=",".join(sorted(scopes)),
            created_at=time.time(),
            last_used_at=None,
            revoked_at=None,
        )
        async with self.db.write() as conn:
            if await repo.count_active_keys(conn, user.id) >= MAX_ACTIVE_KEYS:
                raise Conflict(
                    f"a user may have at most {MAX_ACTIVE_KEYS} active keys; revoke one first",
                    {"limit": MAX_ACTIVE_KEYS},
                )
            await repo.insert_key(
                conn, row, account_id=user.account_id, key_hash=hash_api_key(secret)
            )
        return IssuedKey(row, secret)

    async def keys(self, user_id: str | None = None) -> list[KeyRow]:
        async with self.db.read() as conn:
            return await repo.list_keys(conn, user_id)

    async def revoke_key(self, key_id: str, *, owner_id: str | None = None) -> KeyRow:
        """Revoke a key; ``owner_id`` restricts it to one user's keys (404 otherwise)."""
        async with self.db.write() as conn:
            key = await repo.get_key(conn, key_id)
            if key is None or (owner_id is not None and key.user_id != owner_id):
                raise NotFound(f"no key with id {key_id!r}")
            if key.revoked_at is not None:
                raise Conflict(f"key {key_id!r} is already revoked")
            await repo.revoke_key(conn, key_id, time.time())
            revoked = await repo.get_key(conn, key_id)
        assert revoked is not None
        return revoked

    async def authenticate(self, key: str) -> Principal:
        if not looks_like_key(key):
            raise Unauthorized("invalid API key")
        key_hash = hash_api_key(key)
        async with self.db.read() as conn:
            found = await repo.principal_by_hash(conn, key_hash)
        if found is None:
            raise Unauthorized("invalid or revoked API key")
        principal, last_used = found
        now = time.time()
        if last_used is None or last_used < now - LAST_USED_RESOLUTION:
            async with self.db.write() as conn:
                await repo.touch_key(conn, principal.key_id, now, now - LAST_USED_RESOLUTION)
        return principal
