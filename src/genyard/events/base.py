"""The event bus Protocol. Implementations: in-process now; PostgreSQL NOTIFY or Redis
pub/sub when API and workers are separate processes.

Signals are ``asyncio.Event`` objects the caller registers *before* it reads state, so
a ring between the read and the wait is never lost: clear, read, then wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol


class EventBus(Protocol):
    async def start(self) -> None:
        """Connect (for buses that cross processes)."""

    async def stop(self) -> None:
        """Disconnect."""

    def job_changed(self, job_id: str, terminal: bool = False) -> None:
        """Ring for a job whose row changed (status, progress, logs); ``terminal`` when
        it just ended, a hint for watchers that only wait for the end."""

    def work_available(self, model: str) -> None:
        """Ring for workers: a job for ``model`` became pending."""

    def job_canceled(self, job_id: str) -> None:
        """Ring for a job that was canceled: whoever runs it stops the run."""

    def on_cancel(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(job_id)`` for every cancel rung, here or in another process."""

    def watch_job(
        self, job_id: str, *, ends_only: bool = False
    ) -> AbstractContextManager[asyncio.Event]:
        """An event set whenever ``job_changed(job_id)`` rings, while the block runs;
        with ``ends_only``, only when it rings ``terminal``."""
        ...

    def work_signal(self, models: frozenset[str]) -> asyncio.Event:
        """A lasting event set whenever work for one of ``models`` may be available."""
        ...
