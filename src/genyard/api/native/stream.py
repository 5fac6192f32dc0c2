"""``GET /v1/predictions/{id}/stream``: server-sent events, rebuilt from the database.

The event bus only says "look again"; every event is read back from the job row and
the append-only log table, so a missed bell or a reconnect loses nothing. Events:

- ``status``: ``{"status", "progress"}`` whenever either changes;
- ``logs``: one log line (the SSE ``id`` is the line's id, increasing; send it back
  as ``Last-Event-ID`` to resume after it);
- ``output``: the output, once, when the job succeeded;
- ``error``: ``{"code", "message"}`` when it failed or was canceled;
- ``done``: ``{"status"}``, last, then the stream closes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from genyard.api.deps import ServicesDep, require
from genyard.db import jobs_repo
from genyard.domain.accounts import Principal, Scope
from genyard.domain.jobs import JobStatus
from genyard.services.container import Services

router = APIRouter(tags=["predictions"])
POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0


def sse(event: str, data: Any, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


async def _events(
    services: Services, job_id: str, account_id: str, last_log: int
) -> AsyncIterator[bytes]:
    seen: tuple[str, int] | None = None
    last_sent = time.monotonic()
    with services.bus.watch_job(job_id) as rang:
        while True:
            rang.clear()
            async with services.db.read() as conn:
                job = await jobs_repo.get_job(conn, job_id, account_id)
                lines = await jobs_repo.read_logs_after(conn, job_id, last_log)
            if job is None:
                return
            for line_id, line in lines:
                last_log = line_id
                last_sent = time.monotonic()
                yield sse("logs", line, line_id)
            state = (job.status.value, job.progress)
            if state != seen:
                seen = state
                last_sent = time.monotonic()
                yield sse("status", {"status": state[0], "progress": state[1]})
            if job.status.is_terminal():
                if job.status is JobStatus.SUCCEEDED:
                    yield sse("output", services.files.links.present(job)[1])
                else:
                    yield sse("error", {"code": job.error_code, "message": job.error_message})
                yield sse("done", {"status": job.status.value})
                return
            try:
                async with asyncio.timeout(POLL_SECONDS):
                    await rang.wait()
            except TimeoutError:
                if time.monotonic() - last_sent > KEEPALIVE_SECONDS:
                    last_sent = time.monotonic()
                    yield b": keep-alive\n\n"


@router.get("/v1/predictions/{prediction_id}/stream")
async def stream_prediction(
    prediction_id: str,
    request: Request,
    services: ServicesDep,
    principal: Annotated[Principal, require(Scope.READ)],
) -> StreamingResponse:
    await services.predictions.get(prediction_id, principal.account_id)  # 404 before streaming
    last_event = request.headers.get("last-event-id", "")
    last_log = int(last_event) if last_event.isdigit() else 0
    return StreamingResponse(
        _events(services, prediction_id, principal.account_id, last_log),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
