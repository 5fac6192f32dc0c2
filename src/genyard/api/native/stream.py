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

from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from genyard.api.deps import ServicesDep, require
from genyard.domain.accounts import Principal, Scope
from genyard.domain.jobs import JobStatus
from genyard.services import job_events
from genyard.services.container import Services
from genyard.services.job_events import Cursor

router = APIRouter(tags=["predictions"])

#: Headers every server-sent-events response sends (no proxy buffering or caching).
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(event: str, data: Any, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


async def _events(
    services: Services, job_id: str, account_id: str, cursor: Cursor
) -> AsyncIterator[bytes]:
    async for event in job_events.follow(services.db, services.bus, job_id, account_id, cursor):
        match event:
            case job_events.LogLine(line, at):
                yield sse("logs", line, str(at))
            case job_events.OutputDelta(text, at):
                yield sse("delta", text, str(at))
            case job_events.StatusChanged(status, progress):
                yield sse("status", {"status": status.value, "progress": progress})
            case job_events.Ended(job):
                if job.status is JobStatus.SUCCEEDED:
                    yield sse("output", services.files.links.present(job)[1])
                else:
                    yield sse("error", {"code": job.error_code, "message": job.error_message})
                yield sse("done", {"status": job.status.value})
            case job_events.Idle():
                yield b": keep-alive\n\n"


@router.get("/v1/predictions/{prediction_id}/stream")
async def stream_prediction(
    prediction_id: str,
    request: Request,
    services: ServicesDep,
    principal: Annotated[Principal, require(Scope.READ)],
) -> StreamingResponse:
    await services.predictions.get(prediction_id, principal.account_id)  # 404 before streaming
    cursor = Cursor.parse(request.headers.get("last-event-id", ""))
    return StreamingResponse(
        _events(services, prediction_id, principal.account_id, cursor),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )
