"""Parsing helpers of the native face: ``Prefer: wait`` and list cursors."""

from __future__ import annotations

import pytest

from genyard.api.native.predictions import wait_seconds
from genyard.api.paging import decode_cursor, encode_cursor
from genyard.errors import InvalidRequest


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("respond-async", None),
        ("waiting=3", None),
        ("wait=5", 5.0),
        ("wait=0.25", 0.25),
        ("wait=0", 0.0),
        ("wait=500", 60.0),
        ("wait", 60.0),
        ("handling=lenient, wait=7", 7.0),
        ("wait=2; foo", 2.0),
    ],
)
def test_wait_seconds(header: str | None, expected: float | None) -> None:
    assert wait_seconds(header, cap=60.0) == expected


def test_cursor_round_trip_keeps_the_exact_timestamp() -> None:
    created = 1763733269.8312345
    cursor = encode_cursor(created, "pred_abc")
    assert "=" not in cursor
    assert decode_cursor(cursor) == (created, "pred_abc")


@pytest.mark.parametrize("cursor", ["!!!", "bm9wZQ", "YWJjfGRlZg", "////"])
def test_bad_cursors_name_the_field(cursor: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        decode_cursor(cursor)
    assert info.value.details == {"errors": [{"field": "cursor", "message": "invalid cursor"}]}
