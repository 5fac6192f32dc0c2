"""The rate limiter on its own (memory storage): tiers, windows, buckets, exemptions."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from genyard.config import load_settings
from genyard.domain.accounts import Principal
from genyard.domain.ratelimits import DEFAULT_TIERS, Bucket, Tier, Window, parse_tiers
from genyard.errors import RateLimited
from genyard.services.ratelimit import RateLimiter, storage_for
from redis_server import RedisServer

SMALL = "free=3/5/7;basic=6/60/600;pro=9/90/900;enterprise=12/120/1200"


def principal(tier: str = "free", *, key: str = "key_1", admin: bool = False) -> Principal:
    return Principal(key, "usr_1", "ana", "acc_1", admin, tier, frozenset())


async def limiter_for(**settings: Any) -> RateLimiter:
    limiter = RateLimiter(load_settings(**settings))
    await limiter.start()
    return limiter


@pytest.fixture
async def limiter() -> AsyncIterator[RateLimiter]:
    made = await limiter_for(rate_limit_tiers=SMALL, rate_limit_anonymous=2)
    yield made
    await made.stop()


def test_the_default_tiers_are_the_seeds() -> None:
    assert parse_tiers(DEFAULT_TIERS) == {
        "free": Tier("free", 30, 500, 5000),
        "basic": Tier("basic", 60, 2000, 20000),
        "pro": Tier("pro", 120, 5000, 50000),
        "enterprise": Tier("enterprise", 300, 20000, 200000),
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("free=1/2/3", "tiers missing: basic, pro, enterprise"),
        (SMALL + ";gold=1/2/3", "unknown tier 'gold'"),
        (SMALL + ";free=1/2/3", "tier 'free' is given twice"),
        (SMALL.replace("3/5/7", "3/5"), "expected three whole numbers"),
        (SMALL.replace("3/5/7", "0/5/7"), "at least 1"),
        ("free 3/5/7", "expected name=per_minute/per_hour/per_day"),
    ],
)
def test_bad_tier_tables_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_tiers(text)
    with pytest.raises(ValueError, match=message):
        load_settings(rate_limit_tiers=text)


async def test_counts_down_the_minute_then_refuses_with_the_window(limiter: RateLimiter) -> None:
    before = time.time()
    decisions = [await limiter.check(principal(), client_ip="1.1.1.1") for _ in range(4)]
    assert all(d is not None for d in decisions)
    first, *_, refused = [d for d in decisions if d is not None]
    assert [d.remaining for d in decisions if d] == [2, 1, 0, 0]
    assert first.allowed and first.limit == 3 and first.tier == "free"
    assert before + 59 <= first.reset <= time.time() + 60
    assert not refused.allowed and refused.exceeded is Window.MINUTE
    assert 1 <= refused.retry_after <= 60
    error = refused.error()
    assert isinstance(error, RateLimited) and error.status == 429
    assert error.code == "rate_limit_exceeded" and error.retry_after == refused.retry_after
    assert error.details["window"] == "minute" and error.details["limit"] == 3
    assert error.details["tier"] == "free"


async def test_each_key_and_each_tier_has_its_own_count(limiter: RateLimiter) -> None:
    for _ in range(3):
        await limiter.check(principal(key="a"), client_ip="ip")
    other = await limiter.check(principal(key="b"), client_ip="ip")
    assert other is not None and other.allowed and other.remaining == 2
    pro = await limiter.check(principal("pro", key="c"), client_ip="ip")
    assert pro is not None and pro.limit == 9 and pro.tier == "pro"


async def test_the_hour_window_refuses_when_the_minute_would_not() -> None:
    limiter = await limiter_for(
        rate_limit_tiers="free=10/4/100;basic=1/1/1;pro=1/1/1;enterprise=1/1/1"
    )
    try:
        results = [await limiter.check(principal(), client_ip="ip") for _ in range(5)]
        assert [d.allowed for d in results if d] == [True] * 4 + [False]
        refused = results[-1]
        assert refused is not None and refused.exceeded is Window.HOUR
        assert refused.exceeded_limit == 4 and refused.limit == 10
        assert 3500 < refused.retry_after <= 3600
        assert refused.error().details["window"] == "hour"
    finally:
        await limiter.stop()


async def test_polling_counts_apart_at_ten_times_the_tier(limiter: RateLimiter) -> None:
    for _ in range(3):
        await limiter.check(principal(), client_ip="ip")
    polls = [await limiter.check(principal(), client_ip="ip", polling=True) for _ in range(31)]
    assert [d.allowed for d in polls if d] == [True] * 30 + [False]
    assert polls[0] is not None and polls[0].limit == 30 and polls[0].bucket is Bucket.POLLING
    main = await limiter.check(principal(), client_ip="ip")
    assert main is not None and not main.allowed and main.bucket is Bucket.REQUESTS


async def test_admins_are_not_counted(limiter: RateLimiter) -> None:
    for _ in range(20):
        assert await limiter.check(principal(admin=True), client_ip="ip") is None


async def test_calls_without_a_key_are_counted_per_ip(limiter: RateLimiter) -> None:
    a = [await limiter.check(None, client_ip="10.0.0.1") for _ in range(3)]
    assert [d.allowed for d in a if d] == [True, True, False]
    assert a[0] is not None and a[0].tier == "anonymous" and a[0].limit == 2
    b = await limiter.check(None, client_ip="10.0.0.2")
    assert b is not None and b.allowed


async def test_off_counts_nothing() -> None:
    limiter = await limiter_for(rate_limits="off")
    assert await limiter.check(principal(), client_ip="ip") is None
    assert await limiter.check(None, client_ip="ip") is None
    await limiter.stop()


async def test_a_failing_storage_lets_requests_through(
    limiter: RateLimiter, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        async def incr(self, *args: Any, **kwargs: Any) -> int:
            raise ConnectionError("redis is down")

    limiter.storage = Broken()  # type: ignore[assignment]
    assert await limiter.check(principal(), client_ip="ip") is None
    assert "rate-limit storage failed" in caplog.text


def test_redis_urls_map_to_the_librarys_schemes() -> None:
    with pytest.raises(ValueError, match="GENYARD_REDIS_URL"):
        storage_for("http://localhost:6379")


async def test_two_limiters_on_one_redis_share_the_count(redis_server: RedisServer) -> None:
    one = await limiter_for(rate_limit_tiers=SMALL, redis_url=redis_server.url)
    two = await limiter_for(rate_limit_tiers=SMALL, redis_url=redis_server.url)
    try:
        assert one.shared and "Redis" in one.describe()
        who = principal(key=f"key_{time.time_ns()}")
        decisions = [await (one, two)[i % 2].check(who, client_ip="ip") for i in range(5)]
        assert [d.remaining for d in decisions if d] == [2, 1, 0, 0, 0]
        assert [d.allowed for d in decisions if d] == [True, True, True, False, False]
    finally:
        await one.stop()
        await two.stop()
