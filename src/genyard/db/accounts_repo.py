"""SQL for accounts, users and API keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from genyard.db import billing_repo
from genyard.db.engine import DbConnection
from genyard.db.tables import accounts, api_keys, users
from genyard.domain.accounts import Principal, parse_scopes


@dataclass(frozen=True, slots=True)
class UserRow:
    id: str
    name: str
    account_id: str
    is_admin: bool
    tier: str
    created_at: float


@dataclass(frozen=True, slots=True)
class KeyRow:
    id: str
    user_id: str
    name: str
    prefix: str
    scopes: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None


def _user(row: sa.Row[Any]) -> UserRow:
    m = row._mapping
    return UserRow(
        m["id"], m["name"], m["account_id"], bool(m["is_admin"]), m["tier"], m["created_at"]
    )


def _key(row: sa.Row[Any]) -> KeyRow:
    m = row._mapping
    return KeyRow(
        m["id"], m["user_id"], m["name"], m["prefix"], m["scopes"],
        m["created_at"], m["last_used_at"], m["revoked_at"],
    )  # fmt: skip


async def count_users(conn: DbConnection) -> int:
    return int((await conn.execute(sa.select(sa.func.count()).select_from(users))).scalar_one())


async def insert_user(conn: DbConnection, user: UserRow) -> None:
    await conn.execute(
        accounts.insert().values(id=user.account_id, name=user.name, created_at=user.created_at)
    )
    await billing_repo.create_balance(conn, user.account_id)
    await conn.execute(
        users.insert().values(
            id=user.id,
            name=user.name,
            account_id=user.account_id,
            is_admin=user.is_admin,
            tier=user.tier,
            created_at=user.created_at,
        )
    )


async def user_by_name(conn: DbConnection, name: str) -> UserRow | None:
    row = (await conn.execute(sa.select(users).where(users.c.name == name))).first()
    return _user(row) if row else None


async def all_users(conn: DbConnection) -> list[UserRow]:
    return [_user(r) for r in await conn.execute(sa.select(users).order_by(users.c.created_at))]


async def insert_key(conn: DbConnection, key: KeyRow, *, account_id: str, key_hash: str) -> None:
    await conn.execute(
        api_keys.insert().values(
            id=key.id,
            user_id=key.user_id,
            account_id=account_id,
            name=key.name,
            prefix=key.prefix,
            key_hash=key_hash,
            scopes=key.scopes,
            created_at=key.created_at,
        )
    )


async def count_active_keys(conn: DbConnection, user_id: str) -> int:
    query = sa.select(sa.func.count()).where(
        api_keys.c.user_id == user_id, api_keys.c.revoked_at.is_(None)
    )
    return int((await conn.execute(query)).scalar_one())


async def list_keys(conn: DbConnection, user_id: str | None = None) -> list[KeyRow]:
    query = sa.select(api_keys).order_by(api_keys.c.created_at)
    if user_id is not None:
        query = query.where(api_keys.c.user_id == user_id)
    return [_key(r) for r in await conn.execute(query)]


async def get_key(conn: DbConnection, key_id: str) -> KeyRow | None:
    row = (await conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id))).first()
    return _key(row) if row else None


async def revoke_key(conn: DbConnection, key_id: str, now: float) -> bool:
    result = await conn.execute(
        api_keys.update()
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount > 0


# Built once, so its cache key is too: this runs on every authenticated request.
_PRINCIPAL_BY_HASH = (
    sa.select(
        api_keys.c.id,
        api_keys.c.scopes,
        api_keys.c.last_used_at,
        users.c.id.label("user_id"),
        users.c.name,
        users.c.account_id,
        users.c.is_admin,
        users.c.tier,
    )
    .join(users, users.c.id == api_keys.c.user_id)
    .where(api_keys.c.key_hash == sa.bindparam("key_hash"), api_keys.c.revoked_at.is_(None))
)


async def principal_by_hash(
    conn: DbConnection, key_hash: str
) -> tuple[Principal, float | None] | None:
    """The principal of an active key, and the key's last-used time."""
    row = (await conn.execute(_PRINCIPAL_BY_HASH, {"key_hash": key_hash})).first()
    if row is None:
        return None
    principal = Principal(
        key_id=row.id,
        user_id=row.user_id,
        user_name=row.name,
        account_id=row.account_id,
        is_admin=bool(row.is_admin),
        tier=row.tier,
        scopes=parse_scopes(row.scopes),
    )
    return principal, row.last_used_at


async def touch_key(conn: DbConnection, key_id: str, now: float, stale_before: float) -> None:
    """Set last_used_at unless another request already did within the resolution."""
    await conn.execute(
        api_keys.update()
        .where(
            api_keys.c.id == key_id,
            sa.or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < stale_before),
        )
        .values(last_used_at=now)
    )
