"""Rate limits: the rules, with no storage.

Each tier allows so many requests per minute, per hour and per day, counted per API
key in fixed windows (a window starts at its first request and lasts its length).
Polling one's own prediction (``GET /v1/predictions/{id}`` and its stream) counts in a
bucket of its own at :data:`POLL_FACTOR` times the tier. Calls without a valid key are
counted per client IP, per minute. Admins are not counted.

The tiers come from one setting, ``GENYARD_RATE_LIMIT_TIERS``:
``free=30/500/5000;basic=60/2000/20000;...`` (per minute / per hour / per day).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from genyard.domain.accounts import TIERS
from genyard.errors import RateLimited

DEFAULT_TIERS = (
    "free=30/500/5000;basic=60/2000/20000;pro=120/5000/50000;enterprise=300/20000/200000"
)
POLL_FACTOR = 10
ANONYMOUS_TIER = "anonymous"
# The routes whose GETs poll one prediction: they count in the polling bucket.
POLLING_ROUTES = frozenset(
    {
        "/v1/predictions/{prediction_id}",
        "/v1/predictions/{prediction_id}/stream",
        "/v1/tasks/{task_id}",  # the tasks face's poll
    }
)


class Window(StrEnum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"

    @property
    def seconds(self) -> int:
        return {"minute": 60, "hour": 3600, "day": 86400}[self.value]


class Bucket(StrEnum):
    """What a request is counted in."""

    REQUESTS = "requests"
    POLLING = "polling"
    ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    per_minute: int
    per_hour: int
    per_day: int

    def limits(self, factor: int = 1) -> tuple[tuple[Window, int], ...]:
        """The windows and their limits, shortest first (the order they are counted in)."""
        return (
            (Window.MINUTE, self.per_minute * factor),
            (Window.HOUR, self.per_hour * factor),
            (Window.DAY, self.per_day * factor),
        )


def parse_tiers(text: str) -> dict[str, Tier]:
    """``name=minute/hour/day;...`` into tiers; every tier a user can have must be named."""
    tiers: dict[str, Tier] = {}
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        name, sep, numbers = (s.strip() for s in part.partition("="))
        if not sep or not name:
            raise ValueError(f"{part!r}: expected name=per_minute/per_hour/per_day")
        if name not in TIERS:
            raise ValueError(f"unknown tier {name!r}; tiers are {', '.join(TIERS)}")
        if name in tiers:
            raise ValueError(f"tier {name!r} is given twice")
        values = numbers.split("/")
        if len(values) != 3 or not all(v.strip().isdigit() for v in values):
            raise ValueError(
                f"tier {name!r}: expected three whole numbers per_minute/per_hour/per_day, "
                f"got {numbers!r}"
            )
        minute, hour, day = (int(v) for v in values)
        if min(minute, hour, day) < 1:
            raise ValueError(f"tier {name!r}: limits must be at least 1")
        tiers[name] = Tier(name, minute, hour, day)
    missing = [t for t in TIERS if t not in tiers]
    if missing:
        raise ValueError(f"tiers missing: {', '.join(missing)}")
    return tiers


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of counting one request.

    ``limit``, ``remaining`` and ``reset`` describe the per-minute window of the bucket
    the request was counted in (what the headers show); when the request is refused,
    ``exceeded`` names the window that refused it and ``retry_after`` when it reopens.
    """

    tier: str
    bucket: Bucket
    limit: int
    remaining: int
    reset: float
    exceeded: Window | None = None
    exceeded_limit: int = 0
    retry_after: int = 0

    @property
    def allowed(self) -> bool:
        return self.exceeded is None

    def headers(self) -> list[tuple[str, str]]:
        return [
            ("X-RateLimit-Limit", str(self.limit)),
            ("X-RateLimit-Remaining", str(self.remaining)),
            ("X-RateLimit-Reset", str(math.ceil(self.reset))),
            ("X-RateLimit-Tier", self.tier),
            ("X-RateLimit-Bucket", self.bucket.value),
        ]

    def error(self) -> RateLimited:
        """The 429 for a refused request."""
        assert self.exceeded is not None
        who = "this client IP" if self.bucket is Bucket.ANONYMOUS else "this API key"
        what = "polling requests" if self.bucket is Bucket.POLLING else "requests"
        return RateLimited(
            f"rate limit exceeded: {who} may make {self.exceeded_limit} {what} per "
            f"{self.exceeded.value} ({self.tier} tier); retry in {self.retry_after} s",
            {
                "window": self.exceeded.value,
                "limit": self.exceeded_limit,
                "tier": self.tier,
                "bucket": self.bucket.value,
                "retry_after": self.retry_after,
            },
            retry_after=self.retry_after,
        )


def retry_after(reset: float, now: float) -> int:
    """Whole seconds until ``reset``, at least 1."""
    return max(1, math.ceil(reset - now))
