"""In-process event bus for the embedded single-process mode. Call it from the event loop."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class InProcessEventBus:
    def __init__(self) -> None:
        self._job_watchers: dict[str, set[tuple[asyncio.Event, bool]]] = defaultdict(set)
        self._work_signals: list[tuple[frozenset[str], asyncio.Event]] = []
        self._cancel_callbacks: list[Callable[[str], None]] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def job_changed(self, job_id: str, terminal: bool = False) -> None:
        for event, ends_only in self._job_watchers.get(job_id, ()):
            if terminal or not ends_only:
                event.set()

    def work_available(self, model: str) -> None:
        for models, event in self._work_signals:
            if model in models:
                event.set()

    def job_canceled(self, job_id: str) -> None:
        for callback in self._cancel_callbacks:
            callback(job_id)

    def on_cancel(self, callback: Callable[[str], None]) -> None:
        self._cancel_callbacks.append(callback)

    @contextmanager
    def watch_job(self, job_id: str, *, ends_only: bool = False) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        entry = (event, ends_only)
        watchers = self._job_watchers[job_id]
        watchers.add(entry)
        try:
            yield event
        finally:
            watchers.discard(entry)
            if not watchers:
                self._job_watchers.pop(job_id, None)

    def work_signal(self, models: frozenset[str]) -> asyncio.Event:
        event = asyncio.Event()
        self._work_signals.append((models, event))
        return event
