"""A weighted async semaphore: CPU threads shared by all engines of one worker process.

ENGINES.md: threads per call x parallel calls must stay within the cores. Each pool
also caps its own parallel calls; this budget keeps their sum within the machine.
"""

from __future__ import annotations

import asyncio


class CpuBudget:
    def __init__(self, cores: int) -> None:
        self.cores = cores
        self._free = cores
        self._cond = asyncio.Condition()

    async def acquire(self, threads: int) -> None:
        threads = min(threads, self.cores)
        async with self._cond:
            await self._cond.wait_for(lambda: self._free >= threads)
            self._free -= threads

    def try_acquire(self, threads: int) -> bool:
        threads = min(threads, self.cores)
        if self._free >= threads:
            self._free -= threads
            return True
        return False

    async def release(self, threads: int) -> None:
        async with self._cond:
            self._free += min(threads, self.cores)
            self._cond.notify_all()
