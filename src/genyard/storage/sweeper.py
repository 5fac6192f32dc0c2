"""Retention: deletes stored files older than ``GENYARD_FILES_RETENTION_DAYS``.

Runs in the processes that run workers (``genyard serve``, ``genyard worker``), once at
start and then every ``GENYARD_FILES_SWEEP_INTERVAL`` seconds (an hour by default).
Several sweepers on one store are safe: deleting what is already gone is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import time

from genyard.storage.base import BlobStore

log = logging.getLogger(__name__)
DAY = 86400.0


class FileSweeper:
    def __init__(self, blobs: BlobStore, *, retention_days: float, interval: float) -> None:
        self.blobs = blobs
        self.retention_days = retention_days
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def sweep(self, now: float | None = None) -> int:
        """One pass: delete objects stored more than the retention period before ``now``."""
        cutoff = (time.time() if now is None else now) - self.retention_days * DAY
        removed = await self.blobs.delete_older_than(cutoff)
        if removed:
            log.info("deleted %d stored files older than %g days", removed, self.retention_days)
        return removed

    async def _loop(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("file sweep failed")
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="genyard-file-sweeper")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
