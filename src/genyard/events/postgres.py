"""PostgreSQL LISTEN/NOTIFY as the doorbell between API and worker processes.

Local waiters are rung at once (an :class:`InProcessEventBus` inside); every ring is
also sent as a NOTIFY so other processes ring theirs. The bus carries no state: a
waiter always reads the job row back, and both waiters and workers poll on a timer
too, so a lost notification (a dropped connection, a full queue) only costs latency.

Channels: ``genyard_work`` (payload: a model id), ``genyard_job`` (a job id, with
``:end`` when the job just ended) and ``genyard_cancel`` (a job id).
Rings are sent in batches, one ``pg_notify`` query per batch, on one dedicated
connection that also listens; it reconnects with backoff when it drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from genyard.events.memory import InProcessEventBus

log = logging.getLogger(__name__)
WORK_CHANNEL = "genyard_work"
JOB_CHANNEL = "genyard_job"
CANCEL_CHANNEL = "genyard_cancel"
MAX_PENDING_RINGS = 10_000


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    """``postgresql+asyncpg://...`` -> ``postgresql://...`` for asyncpg itself."""
    scheme, sep, rest = sqlalchemy_url.partition("://")
    return "postgresql" + sep + rest if "+" in scheme else sqlalchemy_url


class PostgresEventBus:
    def __init__(self, url: str) -> None:
        self._dsn = asyncpg_dsn(url)
        self._local = InProcessEventBus()
        self._outbox: asyncio.Queue[tuple[str, str]] = asyncio.Queue(MAX_PENDING_RINGS)
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="genyard-pg-events")
        # Wait briefly for the first connection; polling covers the time until then.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self.connected.wait()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def job_changed(self, job_id: str, terminal: bool = False) -> None:
        self._local.job_changed(job_id, terminal)
        self._send(JOB_CHANNEL, f"{job_id}:end" if terminal else job_id)

    def work_available(self, model: str) -> None:
        self._local.work_available(model)
        self._send(WORK_CHANNEL, model)

    def job_canceled(self, job_id: str) -> None:
        self._local.job_canceled(job_id)
        self._send(CANCEL_CHANNEL, job_id)

    def on_cancel(self, callback: Callable[[str], None]) -> None:
        self._local.on_cancel(callback)

    @contextmanager
    def watch_job(self, job_id: str, *, ends_only: bool = False) -> Iterator[asyncio.Event]:
        with self._local.watch_job(job_id, ends_only=ends_only) as event:
            yield event

    def work_signal(self, models: frozenset[str]) -> asyncio.Event:
        return self._local.work_signal(models)

    def _send(self, channel: str, payload: str) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # polling picks it up
            self._outbox.put_nowait((channel, payload))

    def _on_notify(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        if channel == WORK_CHANNEL:
            self._local.work_available(payload)
        elif channel == JOB_CHANNEL:
            job_id, _, end = payload.partition(":")
            self._local.job_changed(job_id, terminal=end == "end")
        elif channel == CANCEL_CHANNEL:
            self._local.job_canceled(payload)

    async def _run(self) -> None:
        import asyncpg

        backoff = 0.5
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self._dsn)
                await conn.add_listener(WORK_CHANNEL, self._on_notify)
                await conn.add_listener(JOB_CHANNEL, self._on_notify)
                await conn.add_listener(CANCEL_CHANNEL, self._on_notify)
                self.connected.set()
                backoff = 0.5
                await self._pump(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected.clear()
                log.warning("event bus connection lost (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)

    async def _pump(self, conn: Any) -> None:
        while True:
            batch = [await self._outbox.get()]
            while not self._outbox.empty() and len(batch) < 500:
                batch.append(self._outbox.get_nowait())
            channels = [c for c, _ in batch]
            payloads = [p for _, p in batch]
            await conn.execute(
                "SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS t(c, p)",
                channels,
                payloads,
            )
