"""The reaper: returns jobs whose lease expired (a lost worker) to the queue, up to the
attempt limit, then fails them with ``worker_lost``; fails jobs that waited in the
queue past their model's ``queue_timeout``. Every change goes through ``transition``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from genyard.db.engine import Database
from genyard.domain.jobs import JobStatus
from genyard.errors import JobErrorCode
from genyard.queue import lifecycle

log = logging.getLogger(__name__)


class Reaper:
    def __init__(
        self,
        db: Database,
        *,
        max_attempts: int,
        interval: float,
        on_moved: Callable[[lifecycle.Moved], None],
    ) -> None:
        self.db = db
        self.max_attempts = max_attempts
        self.interval = interval
        self._on_moved = on_moved
        self._task: asyncio.Task[None] | None = None

    async def reap(self, *, expired_before: float | None = None) -> list[lifecycle.Moved]:
        """One pass. ``expired_before`` defaults to now; +inf treats every lease as lost."""
        now = time.time()
        cutoff = now if expired_before is None else expired_before
        moved: list[lifecycle.Moved] = []
        async with self.db.read() as conn:
            expired = await lifecycle.expired_leases(conn, cutoff)
            overdue = await lifecycle.overdue_pending(conn, now)
        for job_id, token, attempts in expired:
            async with self.db.write() as conn:
                if attempts < self.max_attempts:
                    result = await lifecycle.transition(
                        conn, job_id, JobStatus.PENDING, now=now,
                        lease_token=token, lease_expired_before=cutoff,
                    )  # fmt: skip
                else:
                    result = await lifecycle.transition(
                        conn, job_id, JobStatus.FAILED, now=now,
                        lease_token=token, lease_expired_before=cutoff,
                        error=(
                            JobErrorCode.WORKER_LOST,
                            f"the worker running this job was lost {attempts} times",
                        ),
                    )  # fmt: skip
            if result:
                log.warning("reaped job %s -> %s", job_id, result.status.value)
                moved.append(result)
        for job_id in overdue:
            async with self.db.write() as conn:
                result = await lifecycle.transition(
                    conn, job_id, JobStatus.FAILED, now=now,
                    error=(JobErrorCode.QUEUE_TIMEOUT, "the job waited in the queue too long"),
                )  # fmt: skip
            if result:
                moved.append(result)
        for item in moved:
            self._on_moved(item)
        return moved

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.reap()
            except Exception:
                log.exception("reaper pass failed")

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="genyard-reaper")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
