"""OpenAI's streaming: ``data: {chunk}`` lines, then ``data: [DONE]``.

The chunks are made from :func:`genyard.services.job_events.follow`: each output delta
(the model's tokens) is a chunk with that text, the end is a chunk with the
``finish_reason`` and, with ``stream_options.include_usage``, one more chunk with
``usage`` and no choices. A job that fails sends ``data: {"error": {...}}`` (the SDK
raises ``APIError`` with it) and then ``[DONE]``. A client that goes away only stops
reading: the prediction runs on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from fastapi.responses import StreamingResponse

from genyard.api import face_calls
from genyard.api.native.stream import SSE_HEADERS
from genyard.api.openai.common import token_usage
from genyard.api.openai.errors import error_object
from genyard.domain.jobs import Job, JobStatus
from genyard.services import job_events
from genyard.services.container import Services

DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": keep-alive\n\n"

#: Makes one chunk: (text, finish_reason) -> the chunk's ``choices`` entry.
ChoiceMaker = Callable[[str | None, str | None], dict[str, Any]]


def data(payload: Any) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def chunks(
    services: Services,
    job: Job,
    base: dict[str, Any],
    choice: ChoiceMaker,
    *,
    include_usage: bool,
    first: dict[str, Any] | None = None,
) -> AsyncIterator[bytes]:
    """The stream of one prediction: ``base`` (id, object, created, model) with
    ``choices`` from ``choice``; ``first`` (a choice) is sent before any token."""
    extra = {"usage": None} if include_usage else {}
    if first is not None:
        yield data({**base, "choices": [first], **extra})
    async for event in job_events.follow(services.db, services.bus, job.id, job.account_id):
        match event:
            case job_events.OutputDelta(text, _):
                if text:
                    yield data({**base, "choices": [choice(text, None)], **extra})
            case job_events.Ended(ended):
                if ended.status is JobStatus.SUCCEEDED:
                    last = choice(None, face_calls.output_text(ended)[1])
                    yield data({**base, "choices": [last], **extra})
                    if include_usage:
                        yield data({**base, "choices": [], "usage": token_usage(ended)})
                else:
                    yield data(error_object(face_calls.job_failure(ended)))
                yield DONE
            case job_events.Idle():
                yield KEEPALIVE
            case _:
                pass


def event_stream(body: AsyncIterator[bytes], job: Job) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={**SSE_HEADERS, "x-genyard-prediction-id": job.id},
    )
