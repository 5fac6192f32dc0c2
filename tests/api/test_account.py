"""/v1/account and /v1/keys: who am I, and keys shown once, listed by prefix, revoked."""

from __future__ import annotations

import re

from genyard.domain.accounts import Scope

from .support import DIAGNOSTIC, Api

KEY_SHAPE = re.compile(r"^gy_live_[0-9a-f]{40}$")


async def test_account_describes_the_caller(api: Api) -> None:
    r = await api.client.get("/v1/account")
    assert r.status_code == 200
    account = r.json()
    admin = await api.services.accounts.user("admin")
    assert account["id"] == admin.account_id
    assert account["user"] == {
        "id": admin.id,
        "name": "admin",
        "is_admin": True,
        "tier": "enterprise",
    }
    keys = (await api.client.get("/v1/keys")).json()["data"]
    assert [k["name"] for k in keys] == ["admin"]
    # the admin key has no stored scopes, which means full access
    full = ["generate", "read", "write"]
    assert account["key"] == {"id": keys[0]["id"], "scopes": full}
    assert keys[0]["scopes"] == full


async def test_account_of_a_scoped_key(api: Api) -> None:
    key = await api.new_user("ann", frozenset({Scope.READ}))
    r = await api.anon.get("/v1/account", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200
    body = r.json()
    assert body["user"]["name"] == "ann" and body["user"]["is_admin"] is False
    assert body["user"]["tier"] == "free"
    assert body["key"]["scopes"] == ["read"]


async def test_key_lifecycle_shown_once_listed_by_prefix_revoked(api: Api) -> None:
    r = await api.client.post("/v1/keys", json={"name": "ci", "scopes": ["read", "generate"]})
    assert r.status_code == 201
    created = r.json()
    secret = created["key"]
    assert KEY_SHAPE.match(secret)
    assert created["prefix"] == secret[:14]
    assert created["name"] == "ci"
    assert created["scopes"] == ["generate", "read"]
    assert created["active"] is True
    assert created["last_used_at"] is None and created["revoked_at"] is None

    listing = await api.client.get("/v1/keys")
    assert secret not in listing.text
    body = listing.json()
    assert body["max_active"] == 10
    listed = {k["id"]: k for k in body["data"]}
    assert set(listed[created["id"]]) == {
        "id",
        "name",
        "prefix",
        "scopes",
        "created_at",
        "last_used_at",
        "revoked_at",
        "active",
    }
    assert listed[created["id"]]["prefix"] == secret[:14]
    assert all("key" not in k for k in body["data"])

    # the new key works, for its scopes only, and its use is recorded
    r = await api.anon.post(
        "/v1/predictions",
        json={"model": DIAGNOSTIC, "input": {"mode": "echo", "payload": 7}},
        headers={**api.auth(secret), "Prefer": "wait=10"},
    )
    assert (r.status_code, r.json()["output"]) == (201, 7)
    assert (await api.anon.get("/v1/keys", headers=api.auth(secret))).status_code == 200
    r = await api.anon.post("/v1/keys", json={}, headers=api.auth(secret))
    assert r.status_code == 403
    listed = {k["id"]: k for k in (await api.client.get("/v1/keys")).json()["data"]}
    assert listed[created["id"]]["last_used_at"] is not None

    # revoked: 401 from then on, and it lists as inactive
    r = await api.client.delete(f"/v1/keys/{created['id']}")
    assert r.status_code == 200
    assert r.json()["active"] is False and r.json()["revoked_at"] is not None
    r = await api.anon.get("/v1/account", headers=api.auth(secret))
    assert (r.status_code, r.json()["error"]["code"]) == (401, "unauthorized")
    listed = {k["id"]: k for k in (await api.client.get("/v1/keys")).json()["data"]}
    assert listed[created["id"]]["active"] is False
    r = await api.client.delete(f"/v1/keys/{created['id']}")
    assert r.status_code == 409


async def test_last_used_at_is_set_when_a_key_is_used(api: Api) -> None:
    key = await api.new_user("bea")
    before = (await api.services.accounts.keys())[-1]
    assert before.last_used_at is None
    assert (await api.anon.get("/v1/account", headers=api.auth(key))).status_code == 200
    keys = (await api.anon.get("/v1/keys", headers=api.auth(key))).json()["data"]
    assert len(keys) == 1 and keys[0]["last_used_at"] is not None
    stored = next(k for k in await api.services.accounts.keys() if k.id == keys[0]["id"])
    first_use = stored.last_used_at
    assert first_use is not None
    # written at most once a minute: a second request leaves it alone
    assert (await api.anon.get("/v1/account", headers=api.auth(key))).status_code == 200
    stored = next(k for k in await api.services.accounts.keys() if k.id == keys[0]["id"])
    assert stored.last_used_at == first_use


async def test_keys_of_other_users_are_not_listed(api: Api) -> None:
    ann = await api.new_user("ann")
    theirs = (await api.anon.get("/v1/keys", headers=api.auth(ann))).json()["data"]
    mine = (await api.client.get("/v1/keys")).json()["data"]
    assert {k["id"] for k in theirs}.isdisjoint({k["id"] for k in mine})
    assert [k["name"] for k in theirs] == ["test"]
