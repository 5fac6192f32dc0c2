"""``GET /v1/predictions/{id}/stream``: server-sent events, rebuilt from the database.

The event bus only says "look again"; every event is read back from the job row and
the append-only log table, so a missed bell or a reconnect loses nothing. Events:

- ``status``: ``{"status", "progress"}`` whenever either changes;
- ``logs``: one log line;
- ``delta``: a piece of the output as the model makes it (a chat model's tokens), a
  JSON string; joined in order they make the text of the final output;
- ``output``: the whole output, once, when the job succeeded;
- ``error``: ``{"code", "message"}`` when it failed or was canceled;
- ``done``: ``{"status"}``, last, then the stream closes.

``logs`` and ``delta`` events carry an SSE ``id``, ``<last log id>.<last delta id>``;
send the last one back as ``Last-Event-ID`` to resume after it (a plain number is read
as a log id, as before deltas existed). Deltas of an attempt that was lost (its worker
died and the job ran again) stay in the stream, followed by the new attempt's.
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


def sse(event: str, data: Any, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


async def _events(
    services: Services, job_id: str, account_id: str, cursor: tuple[int, int]
) -> AsyncIterator[bytes]:
    last_log, last_delta = cursor
    seen: tuple[str, int] | None = None
    last_sent = time.monotonic()
    with services.bus.watch_job(job_id) as rang:
        while True:
            rang.clear()
            async with services.db.read() as conn:
                job = await jobs_repo.get_job(conn, job_id, account_id)
                lines = await jobs_repo.read_logs_after(conn, job_id, last_log)
                deltas = await jobs_repo.read_deltas_after(conn, job_id, last_delta)
            if job is None:
                return
            for line_id, line in lines:
                last_log = line_id
                yield sse("logs", line, f"{last_log}.{last_delta}")
            for delta_id, piece in deltas:
                last_delta = delta_id
                yield sse("delta", piece, f"{last_log}.{last_delta}")
            if lines or deltas:
                last_sent = time.monotonic()
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


def parse_cursor(last_event_id: str) -> tuple[int, int]:
    """``Last-Event-ID`` as (log id, delta id): ``"12.40"``, or ``"12"`` (logs only)."""
    log_part, _, delta_part = last_event_id.partition(".")
    log_id = int(log_part) if log_part.isdigit() else 0
    delta_id = int(delta_part) if delta_part.isdigit() else 0
    return log_id, delta_id


@router.get("/v1/predictions/{prediction_id}/stream")
async def stream_prediction(
    prediction_id: str,
    request: Request,
    services: ServicesDep,
    principal: Annotated[Principal, require(Scope.READ)],
) -> StreamingResponse:
    await services.predictions.get(prediction_id, principal.account_id)  # 404 before streaming
    cursor = parse_cursor(request.headers.get("last-event-id", ""))
    return StreamingResponse(
        _events(services, prediction_id, principal.account_id, cursor),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
