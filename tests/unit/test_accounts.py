"""domain/accounts: key format and hash, scopes, principals."""

from __future__ import annotations

import hashlib
import re

import pytest

from genyard.domain.accounts import (
    ALL_SCOPES,
    DISPLAY_PREFIX_CHARS,
    KEY_PREFIX,
    Principal,
    Scope,
    display_prefix,
    effective_scopes,
    hash_api_key,
    looks_like_key,
    new_api_key,
    parse_scopes,
)

KEY_SHAPE = re.compile(r"^gy_live_[0-9a-f]{40}$")


def principal(scopes: frozenset[Scope]) -> Principal:
    return Principal("key_1", "user_1", "ann", "acct_1", False, "free", scopes)


def test_new_keys_are_gy_live_and_40_hex_and_unique() -> None:
    keys = {new_api_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert KEY_SHAPE.match(key), key
        assert looks_like_key(key)


def test_the_hash_is_plain_sha256_hex() -> None:
    key = "gy_live_" + "ab" * 20
    assert hash_api_key(key) == hashlib.sha256(key.encode()).hexdigest()
    assert len(hash_api_key(key)) == 64
    assert hash_api_key(key) != hash_api_key(key[:-1] + "c")


def test_display_prefix_shows_six_characters_after_the_marker() -> None:
    key = "gy_live_0123456789" + "a" * 30
    assert display_prefix(key) == "gy_live_012345"
    assert len(KEY_PREFIX) + 6 == DISPLAY_PREFIX_CHARS


@pytest.mark.parametrize(
    "key",
    [
        "",
        "gy_live_",
        "gy_live_" + "a" * 39,
        "gy_live_" + "a" * 41,
        "gy_live_" + "A" * 40,
        "gy_live_" + "g" * 40,
        "gy_test_" + "a" * 40,
        "sk-" + "a" * 45,
    ],
)
def test_malformed_keys_are_recognised(key: str) -> None:
    assert not looks_like_key(key)


def test_parse_scopes_from_a_string_or_a_list() -> None:
    assert parse_scopes("read,generate") == {Scope.READ, Scope.GENERATE}
    assert parse_scopes(" read , , write ") == {Scope.READ, Scope.WRITE}
    assert parse_scopes(["generate", "generate"]) == {Scope.GENERATE}
    assert parse_scopes("") == frozenset()
    assert parse_scopes([]) == frozenset()
    assert parse_scopes(None) == frozenset()


@pytest.mark.parametrize("raw", ["read,admin", ["READ"], ["delete"]])
def test_unknown_scopes_are_refused_by_name(raw: str | list[str]) -> None:
    with pytest.raises(ValueError, match="unknown scope") as info:
        parse_scopes(raw)
    assert "expected one of generate, read, write" in str(info.value)


def test_no_scopes_means_full_access() -> None:
    assert effective_scopes(frozenset()) == ALL_SCOPES == {Scope.READ, Scope.WRITE, Scope.GENERATE}
    assert effective_scopes(frozenset({Scope.READ})) == {Scope.READ}
    full = principal(frozenset())
    assert all(full.has(s) for s in Scope)
    reader = principal(frozenset({Scope.READ}))
    assert reader.has(Scope.READ)
    assert not reader.has(Scope.GENERATE)
    assert not reader.has(Scope.WRITE)
