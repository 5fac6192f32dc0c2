"""``:streamGenerateContent``: one GenerateContentResponse per piece the model makes.

With ``alt=sse`` (what the SDK asks for) each is a server-sent event,
``data: <json>``, blank line; a quiet stream sends a bare blank line now and then (a
no-op in SSE: the SDK's parser takes no comment lines).
Without it, as Google does, the chunks form one JSON array streamed as it grows
(``[`` chunk ``,`` chunk ... ``]``; whitespace keeps a quiet stream alive). The last
chunk has an empty text part, ``finishReason`` and ``usageMetadata``; a job that
fails or is canceled ends the stream with Google's error object instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from genyard.api import face_calls
from genyard.api.gemini import mapping
from genyard.api.gemini.errors import error_object
from genyard.domain.jobs import Job, JobStatus
from genyard.services import job_events
from genyard.services.container import Services


async def _chunks(services: Services, job: Job) -> AsyncIterator[dict[str, Any] | None]:
    """The stream's objects; None where a keep-alive is due."""
    async for item in job_events.follow(services.db, services.bus, job.id, job.account_id):
        match item:
            case job_events.OutputDelta(text, _) if text:
                yield mapping.chunk(job, text, final=False)
            case job_events.Idle():
                yield None
            case job_events.Ended(ended):
                if ended.status is JobStatus.SUCCEEDED:
                    yield mapping.chunk(ended, "", final=True)
                else:
                    yield error_object(face_calls.job_failure(ended))


async def sse(services: Services, job: Job) -> AsyncIterator[bytes]:
    async for item in _chunks(services, job):
        if item is None:
            yield b"\r\n"
        else:
            yield b"data: " + orjson.dumps(item) + b"\r\n\r\n"


async def json_array(services: Services, job: Job) -> AsyncIterator[bytes]:
    separator = b"["
    async for item in _chunks(services, job):
        if item is None:
            yield b"\n"
        else:
            yield separator + orjson.dumps(item)
            separator = b",\r\n"
    yield b"[]" if separator == b"[" else b"]"
