"""Rate limits through the API: headers on every response, 429 with Retry-After, the
exemptions (admins, /healthz, /metrics), the polling bucket, the per-IP limit for
calls without a key, tiers from settings, and the switch that turns them off.

The counters are in memory here (one process); tests/e2e/test_rate_limits.py shares
a real Redis between two API processes.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from .support import DIAGNOSTIC, TERMINAL, Api, ApiFactory

pytestmark = pytest.mark.sqlite_only(reason="the counters live outside the database")
SMALL = "free=3/100/1000;basic=4/100/1000;pro=5/100/1000;enterprise=6/100/1000"
ECHO = {"model": DIAGNOSTIC, "input": {"mode": "echo", "payload": 1}}


async def user_key(api: Api, name: str, tier: str = "free") -> dict[str, str]:
    user = await api.services.accounts.create_user(name, tier=tier)
    issued = await api.services.accounts.create_key(user, name="test")
    return api.auth(issued.secret)


def limit_headers(r: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in r.headers.items() if k.startswith("x-ratelimit-")}


def expect_429(r: httpx.Response, window: str, limit: int) -> dict[str, Any]:
    assert r.status_code == 429, r.text
    error: dict[str, Any] = r.json()["error"]
    assert error["code"] == "rate_limit_exceeded"
    assert error["details"]["window"] == window
    assert error["details"]["limit"] == limit
    assert f"{limit} " in error["message"] and window in error["message"]
    retry = int(r.headers["retry-after"])
    assert 1 <= retry <= {"minute": 60, "hour": 3600, "day": 86400}[window]
    assert error["details"]["retry_after"] == retry
    return error


async def test_default_tier_headers_on_every_authenticated_response(make_api: ApiFactory) -> None:
    async with make_api(workers=False) as api:
        key = await user_key(api, "ana")
        before = time.time()
        r = await api.client.get("/v1/account", headers=key)
        assert r.status_code == 200
        headers = limit_headers(r)
        assert headers["x-ratelimit-limit"] == "30"  # the seed's free tier
        assert headers["x-ratelimit-remaining"] == "29"
        assert headers["x-ratelimit-tier"] == "free"
        assert headers["x-ratelimit-bucket"] == "requests"
        assert before + 59 <= int(headers["x-ratelimit-reset"]) <= time.time() + 61
        # Errors carry them too: a 404 and a 400 after authentication.
        r = await api.client.get("/v1/predictions/pred_missing0000000000000000", headers=key)
        assert r.status_code == 404
        assert limit_headers(r)["x-ratelimit-limit"] == "300"  # the polling bucket
        r = await api.client.post("/v1/predictions", json={"model": 1}, headers=key)
        assert r.status_code == 400
        assert limit_headers(r)["x-ratelimit-remaining"] == "28"
        enterprise = await user_key(api, "bo", tier="enterprise")
        r = await api.client.get("/v1/models", headers=enterprise)
        assert limit_headers(r)["x-ratelimit-limit"] == "300"
        assert limit_headers(r)["x-ratelimit-tier"] == "enterprise"


async def test_past_the_limit_429_with_retry_after_and_the_window(make_api: ApiFactory) -> None:
    async with make_api(workers=False, rate_limit_tiers=SMALL) as api:
        key = await user_key(api, "ana")
        statuses = [(await api.client.get("/v1/models", headers=key)).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        r = await api.client.post("/v1/predictions", json=ECHO, headers=key)
        error = expect_429(r, "minute", 3)
        assert error["details"]["tier"] == "free"
        assert limit_headers(r)["x-ratelimit-remaining"] == "0"
        assert limit_headers(r)["x-ratelimit-limit"] == "3"
        # Another key is counted apart; a pro key by the pro numbers of the setting.
        other = await user_key(api, "bo", tier="pro")
        r = await api.client.get("/v1/models", headers=other)
        assert r.status_code == 200 and limit_headers(r)["x-ratelimit-limit"] == "5"
        assert limit_headers(r)["x-ratelimit-tier"] == "pro"


async def test_the_hour_and_the_day_refuse_too(make_api: ApiFactory) -> None:
    tiers = "free=50/2/1000;basic=50/100/3;pro=1/1/1;enterprise=1/1/1"
    async with make_api(workers=False, rate_limit_tiers=tiers) as api:
        free, basic = await user_key(api, "ana"), await user_key(api, "bo", tier="basic")
        for _ in range(2):
            assert (await api.client.get("/v1/models", headers=free)).status_code == 200
        r = await api.client.get("/v1/models", headers=free)
        expect_429(r, "hour", 2)
        assert limit_headers(r)["x-ratelimit-limit"] == "50"  # the headers show the minute
        assert int(r.headers["retry-after"]) > 3000
        for _ in range(3):
            assert (await api.client.get("/v1/models", headers=basic)).status_code == 200
        expect_429(await api.client.get("/v1/models", headers=basic), "day", 3)


async def test_admins_healthz_and_metrics_are_exempt(make_api: ApiFactory) -> None:
    tiers = "free=1/1/1;basic=1/1/1;pro=1/1/1;enterprise=1/1/1"
    async with make_api(workers=False, rate_limit_tiers=tiers, rate_limit_anonymous=1) as api:
        for _ in range(5):
            r = await api.client.get("/v1/models")  # the admin's key
            assert r.status_code == 200 and limit_headers(r) == {}
            assert (await api.anon.get("/healthz")).status_code == 200
            r = await api.anon.get("/metrics")
            assert r.status_code == 200 and limit_headers(r) == {}


async def test_polling_ones_prediction_counts_in_its_own_bucket(make_api: ApiFactory) -> None:
    async with make_api(rate_limit_tiers=SMALL) as api:
        key = await user_key(api, "ana")
        r = await api.client.post("/v1/predictions", json=ECHO, headers=key)
        assert r.status_code == 201
        job_id = r.json()["id"]
        seen = []
        for _ in range(30):  # 10 x the tier's 3 a minute
            r = await api.client.get(f"/v1/predictions/{job_id}", headers=key)
            assert r.status_code == 200, r.text
            assert limit_headers(r)["x-ratelimit-bucket"] == "polling"
            assert limit_headers(r)["x-ratelimit-limit"] == "30"
            seen.append(r.json()["status"])
        assert seen[-1] in TERMINAL
        expect_429(await api.client.get(f"/v1/predictions/{job_id}", headers=key), "minute", 30)
        r = await api.client.get(f"/v1/predictions/{job_id}/stream", headers=key)
        expect_429(r, "minute", 30)  # the stream is polling too
        # The main bucket still has 2 of its 3: the list is not polling.
        r = await api.client.get("/v1/predictions", headers=key)
        assert r.status_code == 200
        assert limit_headers(r)["x-ratelimit-bucket"] == "requests"
        assert limit_headers(r)["x-ratelimit-remaining"] == "1"


async def test_the_stream_counts_as_polling(make_api: ApiFactory) -> None:
    async with make_api(rate_limit_tiers=SMALL) as api:
        key = await user_key(api, "ana")
        r = await api.client.post(
            "/v1/predictions", json=ECHO, headers={**key, "Prefer": "wait=10"}
        )
        assert r.json()["status"] == "succeeded"
        r = await api.client.get(f"/v1/predictions/{r.json()['id']}/stream", headers=key)
        assert r.status_code == 200
        assert limit_headers(r)["x-ratelimit-bucket"] == "polling"
        assert limit_headers(r)["x-ratelimit-remaining"] == "29"


async def test_calls_without_a_valid_key_are_limited_per_ip(make_api: ApiFactory) -> None:
    async with make_api(workers=False) as api:  # the default: 15 a minute
        statuses = [(await api.anon.get("/v1/models")).status_code for _ in range(10)]
        bad_key = {"X-API-Key": "gy_live_" + "0" * 40}
        for _ in range(5):
            statuses.append((await api.anon.get("/v1/account", headers=bad_key)).status_code)
        assert statuses == [401] * 15
        r = await api.anon.get("/v1/models")
        expect_429(r, "minute", 15)
        assert r.json()["error"]["details"]["tier"] == "anonymous"
        assert limit_headers(r)["x-ratelimit-tier"] == "anonymous"
        transport = httpx.ASGITransport(app=api.app, client=("203.0.113.9", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://genyard.test") as other:
            r = await other.get("/v1/models")
            assert r.status_code == 401  # another IP, another count
            assert limit_headers(r)["x-ratelimit-remaining"] == "14"
        # A valid key from the limited IP is counted by its key, not the IP.
        key = await user_key(api, "ana")
        assert (await api.anon.get("/v1/models", headers=key)).status_code == 200


async def test_rate_limits_off(make_api: ApiFactory) -> None:
    tiers = "free=1/1/1;basic=1/1/1;pro=1/1/1;enterprise=1/1/1"
    async with make_api(workers=False, rate_limits=False, rate_limit_tiers=tiers) as api:
        key = await user_key(api, "ana")
        for _ in range(5):
            r = await api.client.get("/v1/models", headers=key)
            assert r.status_code == 200 and limit_headers(r) == {}
            assert (await api.anon.get("/v1/models")).status_code == 401
