"""Accounts, users and API keys: the rules, with no SQL.

A key is ``gy_live_`` + 40 hex characters. Only its SHA-256 is stored (keys are long
and random, so a fast hash is enough and keeps the lookup on the hot path cheap),
plus a displayable prefix. Scopes: ``read`` (GET), ``write`` (change account
resources such as keys), ``generate`` (create and cancel predictions). A key with no
scopes has full access.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

KEY_PREFIX = "gy_live_"
KEY_HEX_CHARS = 40
DISPLAY_PREFIX_CHARS = len(KEY_PREFIX) + 6
MAX_ACTIVE_KEYS = 10
LAST_USED_RESOLUTION = 60.0
TIERS = ("free", "basic", "pro", "enterprise")


class Scope(StrEnum):
    READ = "read"
    WRITE = "write"
    GENERATE = "generate"


ALL_SCOPES = frozenset(Scope)


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_hex(KEY_HEX_CHARS // 2)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_PREFIX_CHARS]


def looks_like_key(key: str) -> bool:
    body = key[len(KEY_PREFIX) :]
    return (
        key.startswith(KEY_PREFIX)
        and len(body) == KEY_HEX_CHARS
        and all(c in "0123456789abcdef" for c in body)
    )


def parse_scopes(raw: str | list[str] | None) -> frozenset[Scope]:
    """Scopes from ``"read,generate"`` or a list; unknown names raise ValueError."""
    if raw is None:
        return frozenset()
    names = raw.split(",") if isinstance(raw, str) else raw
    scopes = set()
    for name in (n.strip() for n in names):
        if not name:
            continue
        try:
            scopes.add(Scope(name))
        except ValueError:
            raise ValueError(
                f"unknown scope {name!r}; expected one of {', '.join(sorted(ALL_SCOPES))}"
            ) from None
    return frozenset(scopes)


def effective_scopes(stored: frozenset[Scope]) -> frozenset[Scope]:
    """No scopes stored means full access."""
    return stored or ALL_SCOPES


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key, its user and the account everything belongs to."""

    key_id: str
    user_id: str
    user_name: str
    account_id: str
    is_admin: bool
    tier: str
    scopes: frozenset[Scope]

    def has(self, scope: Scope) -> bool:
        return scope in effective_scopes(self.scopes)
