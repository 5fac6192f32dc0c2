"""Credits through the API, on SQLite and PostgreSQL: holds that never overspend under
concurrent submits, charges and releases at the end, the balance, the ledger, gifts
and admin grants."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from genyard.db import billing_repo

from .support import DIAGNOSTIC, Api, ApiFactory

PRICE = 0.01  # the diagnostic model's per-request price (catalog/diagnostic.toml)


async def user_with(api: Api, name: str, amount: str | None) -> tuple[str, str]:
    """A user whose account holds exactly ``amount`` credits; (key, account id)."""
    key = await api.new_user(name)
    user = await api.services.accounts.user(name)
    if amount is not None:
        r = await api.client.post("/v1/credits/grant", json={"user": name, "amount": amount})
        assert r.status_code == 201, r.text
    return key, user.account_id


async def balance(api: Api, key: str) -> dict[str, Any]:
    """The balance's buckets, ``held`` and ``billing`` (``max`` and ``bonus``: test_bonuses)."""
    r = await api.client.get("/v1/credits/balance", headers=api.auth(key))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return {k: body[k] for k in ("total", "paid", "free", "earned", "held", "billing")}


async def ledger_sum(api: Api, account_id: str) -> int:
    async with api.services.db.read() as conn:
        return await billing_repo.ledger_sum(conn, account_id)


@pytest.fixture
async def billed(make_api: ApiFactory) -> Any:
    """No signup bonus (balances are exactly what a test grants), no request limits."""
    async with make_api(signup_bonus_credits=0, rate_limits=False) as api:
        yield api


async def test_200_concurrent_submits_against_37_credits_worth(billed: Api) -> None:
    api = billed
    key, account = await user_with(api, "ann", "0.37")

    async def submit(i: int) -> Any:
        return await api.client.post(
            "/v1/predictions",
            json={"model": DIAGNOSTIC, "input": {"mode": "echo", "payload": i}},
            headers=api.auth(key),
        )

    answers = await asyncio.gather(*(submit(i) for i in range(200)))
    accepted = [r.json()["id"] for r in answers if r.status_code == 201]
    refused = [r for r in answers if r.status_code == 402]
    assert len(accepted) == 37
    assert len(refused) == 163
    error = refused[0].json()["error"]
    assert error["code"] == "insufficient_credits"
    assert error["details"]["required"] == PRICE
    assert error["details"]["available"] < PRICE
    for job_id in accepted:
        await api.wait_until(job_id, key=key)
    jobs = [await api.get(job_id, key=key) for job_id in accepted]
    assert {j["status"] for j in jobs} == {"succeeded"}
    assert all(j["usage"]["credits_charged"] == PRICE for j in jobs)
    assert await balance(api, key) == {
        "total": 0.0, "paid": 0.0, "free": 0.0, "earned": 0.0, "held": 0.0, "billing": True,
    }  # fmt: skip
    # the ledger: one grant of 0.37 and 37 spends of 0.01, summing to the balance (0)
    assert await ledger_sum(api, account) == 0
    r = await api.client.get("/v1/credits/transactions?limit=100", headers=api.auth(key))
    rows = r.json()["data"]
    assert sorted(row["type"] for row in rows) == ["purchase"] + ["spend"] * 37
    assert {row["prediction_id"] for row in rows if row["type"] == "spend"} == set(accepted)
    # nothing was written for the refused ones
    r = await api.client.get("/v1/predictions?limit=100", headers=api.auth(key))
    assert len(r.json()["data"]) == 37


async def test_failed_and_canceled_jobs_give_their_hold_back(billed: Api) -> None:
    api = billed
    key, account = await user_with(api, "bob", "1")
    failed = await api.predict(DIAGNOSTIC, {"mode": "fail", "message": "boom"}, key=key)
    # Ended before the sleeper is submitted: claimed together, the two would run as one
    # batch, and the failure would be recorded only when the sleep ends.
    done = await api.wait_until(failed["id"], key=key)
    assert done["status"] == "failed"
    sleeper = await api.predict(DIAGNOSTIC, {"mode": "sleep", "seconds": 30}, key=key)
    await api.wait_until(sleeper["id"], lambda j: j["status"] == "processing", key=key)
    assert (await balance(api, key))["held"] == PRICE
    r = await api.client.delete(f"/v1/predictions/{sleeper['id']}", headers=api.auth(key))
    assert r.status_code == 200
    for job in (done, await api.get(sleeper["id"], key=key)):
        assert job["usage"]["credits_held"] == PRICE
        assert job["usage"]["credits_charged"] == 0
    assert await balance(api, key) == {
        "total": 1.0, "paid": 1.0, "free": 0.0, "earned": 0.0, "held": 0.0, "billing": True,
    }  # fmt: skip
    assert await ledger_sum(api, account) == 1_000_000  # the grant only: no spend rows


async def test_spending_draws_free_then_earned_then_paid(make_api: ApiFactory) -> None:
    async with make_api(signup_bonus_credits=0.005, rate_limits=False) as api:
        key, _ = await user_with(api, "cy", "1")
        giver, _ = await user_with(api, "di", "1")
        r = await api.client.post(
            "/v1/credits/gift", json={"to_user": "cy", "amount": "0.002"}, headers=api.auth(giver)
        )
        assert r.status_code == 201, r.text
        assert r.json()["type"] == "gift_sent" and r.json()["amount"] == -0.002
        assert await balance(api, key) == {
            "total": 1.007, "paid": 1.0, "free": 0.005, "earned": 0.002, "held": 0.0,
            "billing": True,
        }  # fmt: skip
        job = await api.predict(DIAGNOSTIC, {"mode": "echo"}, key=key)
        await api.wait_until(job["id"], key=key)
        # 0.01 = all 0.005 free + all 0.002 earned + 0.003 paid
        assert await balance(api, key) == {
            "total": 0.997, "paid": 0.997, "free": 0.0, "earned": 0.0, "held": 0.0,
            "billing": True,
        }  # fmt: skip
        r = await api.client.get("/v1/credits/transactions?type=spend", headers=api.auth(key))
        [spend] = r.json()["data"]
        assert spend["buckets"] == {"paid": 0.003, "free": 0.005, "earned": 0.002}
        assert spend["balance_after"] == 0.997


async def test_transactions_page_newest_first(billed: Api) -> None:
    api = billed
    key, _ = await user_with(api, "ed", None)
    for amount in ("1", "2", "3"):
        r = await api.client.post("/v1/credits/grant", json={"user": "ed", "amount": amount})
        assert r.status_code == 201
    r = await api.client.get("/v1/credits/transactions?limit=2", headers=api.auth(key))
    page = r.json()
    assert [row["amount"] for row in page["data"]] == [3.0, 2.0]
    assert page["has_more"] is True
    r = await api.client.get(
        f"/v1/credits/transactions?limit=2&cursor={page['next_cursor']}", headers=api.auth(key)
    )
    assert [row["amount"] for row in r.json()["data"]] == [1.0]
    assert r.json()["has_more"] is False
    r = await api.client.get("/v1/credits/transactions?type=nope", headers=api.auth(key))
    assert r.status_code == 400


async def test_grants_gifts_and_their_errors(billed: Api) -> None:
    api = billed
    key, _ = await user_with(api, "fay", "1")
    r = await api.client.post(
        "/v1/credits/grant", json={"user": "fay", "amount": 5}, headers=api.auth(key)
    )
    assert r.status_code == 403  # not an admin
    for body, field in (
        ({"user": "fay", "amount": -1}, "amount"),
        ({"user": "fay", "amount": "0.0000001"}, "amount"),
        ({"user": "fay", "amount": 1, "type": "spend"}, "type"),
    ):
        r = await api.client.post("/v1/credits/grant", json=body)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["details"]["errors"][0]["field"] == field
    r = await api.client.post("/v1/credits/grant", json={"user": "nobody", "amount": 1})
    assert r.status_code == 404
    r = await api.client.post(
        "/v1/credits/grant", json={"user": "fay", "amount": 2, "type": "daily_bonus"}
    )
    assert r.status_code == 201 and r.json()["buckets"]["free"] == 2.0
    r = await api.client.post(
        "/v1/credits/gift", json={"to_user": "admin", "amount": 50}, headers=api.auth(key)
    )
    assert r.status_code == 402
    assert r.json()["error"]["details"] == {"required": 50.0, "available": 3.0}
    r = await api.client.post(
        "/v1/credits/gift", json={"to_user": "fay", "amount": 1}, headers=api.auth(key)
    )
    assert r.status_code == 400
    assert (await balance(api, key))["total"] == 3.0


async def test_the_first_admin_and_new_users_start_with_their_grants(api: Api) -> None:
    admin = await balance(api, api.admin_key)
    assert admin["paid"] == api.settings.admin_initial_credits == 1000
    assert admin["free"] == api.settings.signup_bonus_credits == 10
    key = await api.new_user("gus")
    assert (await balance(api, key))["free"] == 10
    r = await api.client.get("/v1/credits/transactions", headers=api.auth(key))
    assert [row["type"] for row in r.json()["data"]] == ["signup_bonus"]


async def test_billing_off_holds_and_charges_nothing(make_api: ApiFactory) -> None:
    async with make_api(billing=False, signup_bonus_credits=0, rate_limits=False) as api:
        key, _ = await user_with(api, "hal", None)
        job = await api.predict(DIAGNOSTIC, {"mode": "echo"}, key=key)
        done = await api.wait_until(job["id"], key=key)
        assert done["status"] == "succeeded"
        assert done["usage"] == {"items": 1}
        assert (await balance(api, key))["billing"] is False
        assert (await balance(api, key))["total"] == 0.0


async def test_the_estimate_is_what_submit_holds_and_the_run_charges(billed: Api) -> None:
    api = billed
    key, _ = await user_with(api, "ivy", "1")
    body = {"model": DIAGNOSTIC, "input": {"mode": "echo", "payload": [1, 2]}}
    r = await api.client.post("/v1/estimate", json=body, headers=api.auth(key))
    assert r.status_code == 200, r.text
    quoted = r.json()["credit_cost"]["total"]
    job = await api.predict(DIAGNOSTIC, body["input"], key=key)
    done = await api.wait_until(job["id"], key=key)
    assert done["usage"]["credits_held"] == quoted == done["usage"]["credits_charged"] == PRICE


async def test_usage_per_model_day_and_key(billed: Api) -> None:
    api = billed
    key, _ = await user_with(api, "jo", "1")
    ok = await api.predict(DIAGNOSTIC, {"mode": "echo"}, key=key)
    bad = await api.predict(DIAGNOSTIC, {"mode": "fail"}, key=key)
    for job in (ok, bad):
        await api.wait_until(job["id"], key=key)
    r = await api.client.get("/v1/usage?days=7", headers=api.auth(key))
    assert r.status_code == 200, r.text
    usage = r.json()
    [day] = usage["days"]
    assert (day["model"], day["requests"], day["succeeded"], day["failed"]) == (
        DIAGNOSTIC, 2, 1, 1,
    )  # fmt: skip
    assert day["credits"] == PRICE
    assert day["latency_p50"] is not None and day["latency_p95"] >= day["latency_p50"]
    [per_key] = usage["keys"]
    assert per_key["requests"] == 2 and per_key["credits"] == PRICE
    assert per_key["prefix"] == key[:14]
    assert usage["totals"] == {"requests": 2, "failed": 1, "credits": PRICE}
    assert (await api.client.get("/v1/usage?days=91", headers=api.auth(key))).status_code == 400
