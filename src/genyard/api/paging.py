"""Cursor pagination shared by the native list routes: newest first, a page is fetched
with one item more than asked, and the cursor is the last item's (created_at, id)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from genyard.errors import InvalidRequest


class Listed(Protocol):
    @property
    def created_at(self) -> float: ...

    @property
    def id(self) -> str: ...


def encode_cursor(created_at: float, job_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at!r}|{job_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, job_id = raw.split("|", 1)
        return float(created), job_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest(
            "cursor: not a cursor this API returned",
            {"errors": [{"field": "cursor", "message": "invalid cursor"}]},
        ) from None


T = TypeVar("T", bound=Listed)


def page(items: Sequence[T], limit: int, render: Callable[[T], dict[str, Any]]) -> dict[str, Any]:
    """The response body of a list route from up to ``limit + 1`` items fetched."""
    has_more = len(items) > limit
    shown = items[:limit]
    return {
        "data": [render(item) for item in shown],
        "has_more": has_more,
        "next_cursor": encode_cursor(shown[-1].created_at, shown[-1].id) if has_more else None,
    }
