"""The rate limiter: counts requests in the ``limits`` library's storage.

One way in, :meth:`RateLimiter.check`, called by the auth dependency
(``api/deps.py``) for every request that names a route needing a key. Counters live in
process memory by default, or in Redis when ``GENYARD_REDIS_URL`` is set, so that
several API processes share them and a limit holds across all of them.

Strategy: fixed windows (the library's ``FixedWindowRateLimiter`` semantics: one
atomic ``INCR`` per window, the window starting at its first request), counted
shortest window first. A request refused by the minute window is not counted in the
hour or the day; one refused by the hour was counted in the minute (harmless: it
only ever lets fewer through, never more). The storage's own increment is atomic
(a Lua script on Redis), so no window ever admits more than its limit, however many
processes count in it.

If the storage fails (Redis down), requests are let through and the failure is
logged: rate limits protect the service, they must not take it down.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from limits import RateLimitItem, RateLimitItemPerDay, RateLimitItemPerHour
from limits import RateLimitItemPerMinute as PerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage

from genyard.config import Settings
from genyard.domain.accounts import Principal
from genyard.domain.ratelimits import (
    ANONYMOUS_TIER,
    POLL_FACTOR,
    Bucket,
    Decision,
    Window,
    parse_tiers,
    retry_after,
)

log = logging.getLogger(__name__)
KEY_PREFIX = "genyard-limits"
_ITEMS: dict[Window, type[RateLimitItem]] = {
    Window.MINUTE: PerMinute,
    Window.HOUR: RateLimitItemPerHour,
    Window.DAY: RateLimitItemPerDay,
}
_FAILURE_LOG_INTERVAL = 60.0


def storage_for(redis_url: str | None) -> Storage:
    """The library's async storage: Redis (through redis-py) when a URL is given."""
    if not redis_url:
        return MemoryStorage()
    scheme, sep, rest = redis_url.partition("://")
    if not sep or scheme not in ("redis", "rediss", "redis+unix", "unix"):
        raise ValueError(f"GENYARD_REDIS_URL must be redis://, rediss:// or unix://: {redis_url!r}")
    uri = f"async+redis+unix://{rest}" if scheme in ("unix", "redis+unix") else f"async+{redis_url}"
    return RedisStorage(uri, implementation="redispy", key_prefix=KEY_PREFIX)


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limits
        self.tiers = parse_tiers(settings.rate_limit_tiers)
        self.anonymous = settings.rate_limit_anonymous
        self.redis_url = settings.redis_url
        self.storage: Storage | None = None
        self._last_failure_log = 0.0

    @property
    def shared(self) -> bool:
        """Whether the counters are shared between processes (Redis)."""
        return bool(self.redis_url)

    async def start(self) -> None:
        """Create the storage (the memory one needs a running event loop)."""
        if self.enabled and self.storage is None:
            self.storage = storage_for(self.redis_url)

    async def stop(self) -> None:
        storage, self.storage = self.storage, None
        if isinstance(storage, MemoryStorage):
            await storage.reset()  # also cancels its expiry timer
            if storage.timer is not None:
                storage.timer.cancel()
        elif storage is not None:
            client: Any = getattr(getattr(storage, "bridge", None), "storage", None)
            if client is not None:
                await client.aclose()

    async def check(
        self, principal: Principal | None, *, client_ip: str, polling: bool = False
    ) -> Decision | None:
        """Count one request. ``None`` when it is not limited (limits off, an admin);
        else the decision, refused when ``decision.allowed`` is false.

        ``principal`` None: a call without a valid key, counted per ``client_ip``."""
        if not self.enabled or self.storage is None:
            return None
        if principal is None:
            bucket = Bucket.ANONYMOUS
            tier_name = ANONYMOUS_TIER
            windows: tuple[tuple[Window, int], ...] = ((Window.MINUTE, self.anonymous),)
            identity: tuple[str, ...] = ("ip", client_ip)
        else:
            if principal.is_admin:
                return None
            tier = self.tiers.get(principal.tier) or self.tiers["free"]
            bucket = Bucket.POLLING if polling else Bucket.REQUESTS
            tier_name = tier.name
            windows = tier.limits(POLL_FACTOR if polling else 1)
            identity = ("key", principal.key_id, bucket.value)
        try:
            return await self._count(self.storage, tier_name, bucket, windows, identity)
        except Exception:
            now = time.monotonic()
            if now - self._last_failure_log >= _FAILURE_LOG_INTERVAL:
                self._last_failure_log = now
                log.exception("rate-limit storage failed; letting requests through")
            return None

    async def _count(
        self,
        storage: Storage,
        tier: str,
        bucket: Bucket,
        windows: tuple[tuple[Window, int], ...],
        identity: tuple[str, ...],
    ) -> Decision:
        minute_limit = windows[0][1]
        minute_count = 0
        minute_reset = 0.0
        for window, limit in windows:
            item = _ITEMS[window](limit)
            key = item.key_for(*identity)
            count = await storage.incr(key, item.get_expiry())
            if window is Window.MINUTE:
                minute_count = count
                minute_reset = await storage.get_expiry(key)
            if count > limit:
                reset = minute_reset if window is Window.MINUTE else await storage.get_expiry(key)
                return Decision(
                    tier, bucket, minute_limit, max(0, minute_limit - minute_count),
                    minute_reset, exceeded=window, exceeded_limit=limit,
                    retry_after=retry_after(reset, time.time()),
                )  # fmt: skip
        return Decision(tier, bucket, minute_limit, minute_limit - minute_count, minute_reset)

    def describe(self) -> str:
        """One line for the startup log."""
        if not self.enabled:
            return "rate limits off"
        where = "Redis (shared by every API process)" if self.shared else "this process's memory"
        return f"rate limits on, counted in {where}"
