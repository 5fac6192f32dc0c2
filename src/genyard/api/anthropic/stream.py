"""A streamed Message, in Anthropic's event sequence:

``message_start``, ``content_block_start`` (one text block, index 0), ``ping``, one
``content_block_delta`` (``text_delta``) per piece the model makes, ``ping`` while
nothing happens, then ``content_block_stop``, ``message_delta`` (``stop_reason``,
``stop_sequence``, ``usage``) and ``message_stop``. Each is ``event: <type>`` and
``data: <json>``. A job that fails or is canceled mid-stream ends the stream with an
``error`` event in Anthropic's error shape.

The engine counts the tokens only at the end, so ``message_start`` carries
``usage.input_tokens`` 0 and ``message_delta`` the real counts (``input_tokens`` and
``output_tokens``; the SDK's accumulated message takes both).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from genyard.api import face_calls
from genyard.api.anthropic import mapping
from genyard.api.anthropic.errors import error_object
from genyard.domain.jobs import Job, JobStatus
from genyard.services import job_events
from genyard.services.container import Services


def event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\n".encode() + b"data: " + orjson.dumps(data) + b"\n\n"


def _start(job: Job) -> bytes:
    return event(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": mapping.message_id(job),
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": job.model,
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            },
        },
    )


def _end(job: Job, stop_sequences: list[str] | None) -> list[bytes]:
    reason, sequence = mapping.stop_reason(job, stop_sequences)
    return [
        event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": sequence},
                "usage": mapping.usage(job),
            },
        ),
        event("message_stop", {"type": "message_stop"}),
    ]


PING = event("ping", {"type": "ping"})


async def events(
    services: Services, job: Job, stop_sequences: list[str] | None
) -> AsyncIterator[bytes]:
    yield _start(job)
    yield event(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    )
    yield PING
    async for item in job_events.follow(services.db, services.bus, job.id, job.account_id):
        match item:
            case job_events.OutputDelta(text, _) if text:
                yield event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": text},
                    },
                )
            case job_events.Idle():
                yield PING
            case job_events.Ended(ended):
                if ended.status is JobStatus.SUCCEEDED:
                    for chunk in _end(ended, stop_sequences):
                        yield chunk
                else:
                    yield event("error", error_object(face_calls.job_failure(ended)))
