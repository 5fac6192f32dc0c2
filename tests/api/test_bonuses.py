"""Daily and weekly bonuses through the API, on SQLite and PostgreSQL: once per UTC day
and ISO week however many requests claim them, again in the next period (the clock
moved by the test), up to the free bucket's cap, and in the ledger."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from genyard.db import billing_repo
from genyard.domain.accounts import Scope

from .support import DIAGNOSTIC, Api, ApiFactory


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


WEDNESDAY = at("2026-11-18T10:00")  # ISO week 2026-W47 runs from Monday the 16th


async def claim(api: Api, key: str) -> dict[str, Any]:
    r = await api.client.post("/v1/credits/bonus", headers=api.auth(key))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def get_balance(api: Api, key: str) -> dict[str, Any]:
    r = await api.client.get("/v1/credits/balance", headers=api.auth(key))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def ledger(api: Api, key: str) -> list[dict[str, Any]]:
    r = await api.client.get("/v1/credits/transactions?limit=100", headers=api.auth(key))
    rows: list[dict[str, Any]] = r.json()["data"]
    return rows


@pytest.fixture
async def bonus_api(make_api: ApiFactory) -> AsyncIterator[Api]:
    """The default bonuses (1 a day, 5 a week, free bucket capped at 50), no signup
    bonus, no request limits, and the clock on a Wednesday."""
    async with make_api(signup_bonus_credits=0, rate_limits=False) as api:
        api.services.credits.clock = lambda: WEDNESDAY
        yield api


def kinds(body: dict[str, Any]) -> list[tuple[str, str, float]]:
    return [(g["type"], g["period"], g["amount"]) for g in body["granted"]]


async def test_a_claim_grants_the_days_and_the_weeks_bonus_once(bonus_api: Api) -> None:
    api = bonus_api
    key = await api.new_user("ann")
    before = await get_balance(api, key)
    assert before["max"] == 50.0 and before["free"] == 0.0
    assert before["bonus"] == {
        "daily": {"amount": 1.0, "period": "2026-11-18", "claimed": False, "claimable": True,
                  "next_claimable_at": "2026-11-18T00:00:00.000Z"},
        "weekly": {"amount": 5.0, "period": "2026-W47", "claimed": False, "claimable": True,
                   "next_claimable_at": "2026-11-16T00:00:00.000Z"},
    }  # fmt: skip

    first = await claim(api, key)
    assert kinds(first) == [("daily_bonus", "2026-11-18", 1.0), ("weekly_bonus", "2026-W47", 5.0)]
    assert first["balance"] == {
        "total": 6.0, "paid": 0.0, "free": 6.0, "earned": 0.0, "held": 0.0, "max": 50.0,
    }  # fmt: skip
    assert first["bonus"]["daily"]["claimed"] and not first["bonus"]["daily"]["claimable"]
    assert first["bonus"]["daily"]["next_claimable_at"] == "2026-11-19T00:00:00.000Z"
    assert first["bonus"]["weekly"]["next_claimable_at"] == "2026-11-23T00:00:00.000Z"

    again = await claim(api, key)  # the same day: nothing more
    assert again["granted"] == []
    assert again["balance"]["total"] == 6.0
    assert again["bonus"] == first["bonus"]
    assert (await get_balance(api, key))["bonus"] == first["bonus"]

    rows = await ledger(api, key)
    assert sorted((r["type"], r["note"], r["amount"]) for r in rows) == [
        ("daily_bonus", "2026-11-18", 1.0), ("weekly_bonus", "2026-W47", 5.0),
    ]  # fmt: skip
    assert {r["id"] for r in rows} == {g["transaction_id"] for g in first["granted"]}
    assert all(r["buckets"] == {"paid": 0.0, "free": r["amount"], "earned": 0.0} for r in rows)
    # claiming changes the balance: a read-only key may look but not claim
    reader = await api.new_user("reader", frozenset({Scope.READ}))
    assert (await get_balance(api, reader))["bonus"]["daily"]["claimable"] is True
    r = await api.client.post("/v1/credits/bonus", headers=api.auth(reader))
    assert r.status_code == 403, r.text


async def test_twenty_claims_at_once_grant_each_bonus_once(bonus_api: Api) -> None:
    api = bonus_api
    key = await api.new_user("bo")
    answers = await asyncio.gather(
        *(api.client.post("/v1/credits/bonus", headers=api.auth(key)) for _ in range(20))
    )
    assert [r.status_code for r in answers] == [200] * 20
    granted = [g for r in answers for g in r.json()["granted"]]
    assert sorted(g["type"] for g in granted) == ["daily_bonus", "weekly_bonus"]
    assert (await get_balance(api, key))["free"] == 6.0
    assert sorted(r["type"] for r in await ledger(api, key)) == ["daily_bonus", "weekly_bonus"]


async def test_a_new_day_and_a_new_week_grant_again(bonus_api: Api) -> None:
    api = bonus_api
    key = await api.new_user("cy")
    user = await api.services.accounts.user("cy")
    assert len((await claim(api, key))["granted"]) == 2

    api.services.credits.clock = lambda: at("2026-11-18T23:59:59.999")
    assert (await claim(api, key))["granted"] == []  # still Wednesday, UTC
    api.services.credits.clock = lambda: at("2026-11-19T00:00:00.001")  # Thursday
    thursday = await claim(api, key)
    assert kinds(thursday) == [("daily_bonus", "2026-11-19", 1.0)]  # the week's is taken
    assert thursday["bonus"]["weekly"]["claimed"] is True

    api.services.credits.clock = lambda: at("2026-11-23T08:00")  # Monday: a new ISO week
    monday = await claim(api, key)
    assert kinds(monday) == [("daily_bonus", "2026-11-23", 1.0), ("weekly_bonus", "2026-W48", 5.0)]
    assert monday["balance"]["free"] == 13.0
    assert (await claim(api, key))["granted"] == []

    # The history sums to the balance (nothing held here).
    rows = await ledger(api, key)
    assert sorted(r["type"] for r in rows) == ["daily_bonus"] * 3 + ["weekly_bonus"] * 2
    assert sum(r["amount"] for r in rows) == pytest.approx(13.0)
    async with api.services.db.read() as conn:
        assert await billing_repo.ledger_sum(conn, user.account_id) == 13_000_000


async def test_bonuses_stop_at_the_free_cap_and_resume_below_it(make_api: ApiFactory) -> None:
    async with make_api(
        signup_bonus_credits=0, rate_limits=False, free_credits_max=3, weekly_bonus_credits=5
    ) as api:
        api.services.credits.clock = lambda: WEDNESDAY
        key = await api.new_user("di")
        first = await claim(api, key)
        # the day's 1, then the week's 5 cut to the 2 that fit under the cap
        assert kinds(first) == [
            ("daily_bonus", "2026-11-18", 1.0),
            ("weekly_bonus", "2026-W47", 2.0),
        ]
        assert first["balance"]["free"] == first["balance"]["max"] == 3.0

        api.services.credits.clock = lambda: at("2026-11-19T09:00")
        status = (await get_balance(api, key))["bonus"]["daily"]
        assert (status["claimed"], status["claimable"]) == (False, False)  # at the cap
        capped = await claim(api, key)
        assert capped["granted"] == [] and capped["balance"]["free"] == 3.0

        # Spending from the free bucket makes room: the day's bonus, still unclaimed,
        # tops it back up to the cap.
        job = await api.predict(DIAGNOSTIC, {"mode": "echo"}, key=key)
        await api.wait_until(job["id"], key=key)
        assert (await get_balance(api, key))["free"] == pytest.approx(2.99)
        refill = await claim(api, key)
        assert kinds(refill) == [("daily_bonus", "2026-11-19", 0.01)]
        assert refill["balance"]["free"] == 3.0
        # admin grants are not capped
        r = await api.client.post(
            "/v1/credits/grant", json={"user": "di", "amount": 10, "type": "daily_bonus"}
        )
        assert r.status_code == 201
        assert (await get_balance(api, key))["free"] == 13.0


async def test_no_cap_shows_max_null(make_api: ApiFactory) -> None:
    async with make_api(signup_bonus_credits=0, rate_limits=False, free_credits_max=0) as api:
        key = await api.new_user("ed")
        assert (await get_balance(api, key))["max"] is None
        assert len((await claim(api, key))["granted"]) == 2


async def test_bonuses_off_answer_409(make_api: ApiFactory) -> None:
    async with make_api(rate_limits=False, billing=False) as api:
        key = await api.new_user("fay")
        r = await api.client.post("/v1/credits/bonus", headers=api.auth(key))
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "conflict"
        assert r.json()["error"]["details"] == {"setting": "GENYARD_BILLING"}
        assert (await get_balance(api, key))["bonus"] is None
    async with make_api(rate_limits=False, daily_bonus_credits=0, weekly_bonus_credits=0) as api:
        key = await api.new_user("gus")
        r = await api.client.post("/v1/credits/bonus", headers=api.auth(key))
        assert r.status_code == 409, r.text
        assert "GENYARD_DAILY_BONUS_CREDITS" in r.json()["error"]["message"]
        daily = (await get_balance(api, key))["bonus"]["daily"]
        assert daily == {
            "amount": 0.0, "period": daily["period"], "claimed": False, "claimable": False,
            "next_claimable_at": None,
        }  # fmt: skip
