"""Identifiers: a type prefix and random, URL-safe characters."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_lowercase + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    """``prefix_`` followed by ``length`` random lowercase letters and digits."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))
