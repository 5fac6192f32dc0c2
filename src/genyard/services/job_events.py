"""A job's live events, rebuilt from the database (DESIGN.md, "Events").

:func:`follow` is the one way a stream learns what a job does: the native
``/v1/predictions/{id}/stream`` and the LLM faces' streaming responses all map its
events to their own wire format. The event bus only says "look again"; each event is
read back from the job row and the append-only log and output-delta tables, so a
missed bell or a reconnect (from a cursor) loses nothing, and a client that goes away
only stops reading: the job runs on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from genyard.db import jobs_repo
from genyard.db.engine import Database
from genyard.domain.jobs import Job, JobStatus
from genyard.events.base import EventBus

#: The stream re-reads the job at least this often, in case a bell was missed.
POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a stream is: the last log line and the last output delta it has sent."""

    log_id: int = 0
    delta_id: int = 0

    def __str__(self) -> str:
        return f"{self.log_id}.{self.delta_id}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """``"12.40"``, or ``"12"`` (a log id, as before deltas existed); junk -> start."""
        log_part, _, delta_part = text.partition(".")
        return cls(
            int(log_part) if log_part.isdigit() else 0,
            int(delta_part) if delta_part.isdigit() else 0,
        )


@dataclass(frozen=True, slots=True)
class StatusChanged:
    status: JobStatus
    progress: float | None


@dataclass(frozen=True, slots=True)
class LogLine:
    line: str
    cursor: Cursor


@dataclass(frozen=True, slots=True)
class OutputDelta:
    """A piece of the output as the model makes it (a chat model's tokens); joined in
    order, the pieces make the final output's text."""

    text: str
    cursor: Cursor


@dataclass(frozen=True, slots=True)
class Ended:
    """Last: the job as it ended (succeeded, failed or canceled)."""

    job: Job


@dataclass(frozen=True, slots=True)
class Idle:
    """Nothing happened for ``keepalive`` seconds (send a keep-alive or a ping)."""


JobEvent = StatusChanged | LogLine | OutputDelta | Ended | Idle


async def follow(
    db: Database,
    bus: EventBus,
    job_id: str,
    account_id: str,
    cursor: Cursor = Cursor(),
    *,
    keepalive: float = KEEPALIVE_SECONDS,
) -> AsyncIterator[JobEvent]:
    """The job's events after ``cursor`` until it ends; nothing when there is no such
    job of the account. Status changes come after the logs and deltas read with them,
    and :class:`Ended` after every delta of the job."""
    last_log, last_delta = cursor.log_id, cursor.delta_id
    seen: tuple[JobStatus, float | None] | None = None
    last_sent = time.monotonic()
    with bus.watch_job(job_id) as rang:
        while True:
            rang.clear()
            async with db.read() as conn:
                job = await jobs_repo.get_job(conn, job_id, account_id)
                lines = await jobs_repo.read_logs_after(conn, job_id, last_log)
                deltas = await jobs_repo.read_deltas_after(conn, job_id, last_delta)
            if job is None:
                return
            for line_id, line in lines:
                last_log = line_id
                yield LogLine(line, Cursor(last_log, last_delta))
            for delta_id, piece in deltas:
                last_delta = delta_id
                yield OutputDelta(piece, Cursor(last_log, last_delta))
            if lines or deltas:
                last_sent = time.monotonic()
            state = (job.status, job.progress)
            if state != seen:
                seen = state
                last_sent = time.monotonic()
                yield StatusChanged(*state)
            if job.status.is_terminal():
                yield Ended(job)
                return
            try:
                async with asyncio.timeout(POLL_SECONDS):
                    await rang.wait()
            except TimeoutError:
                if time.monotonic() - last_sent > keepalive:
                    last_sent = time.monotonic()
                    yield Idle()
