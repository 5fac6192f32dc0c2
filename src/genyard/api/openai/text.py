"""What chat completions and completions share: the request's sampling fields and the
answer, whole (one prediction run within ``llm_wait_seconds``) or streamed (submitted,
then followed: :func:`genyard.api.openai.streaming.chunks`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from starlette.responses import Response

from genyard.api import face_calls
from genyard.api.openai.common import token_usage
from genyard.api.openai.streaming import ChoiceMaker, chunks, event_stream
from genyard.api.responses import JSON
from genyard.domain.accounts import Principal
from genyard.domain.catalog import ModelEntry
from genyard.domain.jobs import Job
from genyard.services.container import Services

#: The answer's fields but ``choices`` and ``usage``: (job, streamed) -> id, object, ...
BaseMaker = Callable[[Job, bool], dict[str, Any]]


class StreamOptions(BaseModel):
    include_usage: bool | None = None


class TextRequest(BaseModel):
    """The fields both requests have."""

    model: str
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None

    def sampling(self) -> dict[str, Any]:
        """The sampling fields the request gives: one left out is left out of the
        prediction's input, so the model's catalog default applies."""
        given = {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "stop": self.stop,
            "seed": self.seed,
        }
        return {name: value for name, value in given.items() if value is not None}


def base_maker(prefix: str, whole: str, chunk: str) -> BaseMaker:
    """The answer's ``id`` (``prefix`` and the prediction id), ``object`` (``whole``, or
    ``chunk`` for a streamed piece), ``created``, ``model`` and ``system_fingerprint``."""

    def base(job: Job, streamed: bool) -> dict[str, Any]:
        return {
            "id": f"{prefix}{job.id}",
            "object": chunk if streamed else whole,
            "created": int(job.created_at or time.time()),
            "model": job.model,
            "system_fingerprint": None,
        }

    return base


async def answer(
    services: Services,
    principal: Principal,
    entry: ModelEntry,
    input: dict[str, Any],
    body: TextRequest,
    *,
    base: BaseMaker,
    delta: ChoiceMaker,
    whole: ChoiceMaker,
    first: dict[str, Any] | None = None,
) -> Response:
    """The prediction's answer: chunks made by ``delta`` (``first`` sent before any
    token) when the request streams, else one choice made by ``whole``."""
    if body.stream:
        job = await face_calls.start(services, principal, entry.id, input)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        stream = chunks(
            services, job, base(job, True), delta, include_usage=include_usage, first=first
        )
        return event_stream(stream, job)
    job = await face_calls.run(services, principal, entry.id, input)
    text, finish = face_calls.output_text(job)
    return JSON(
        {**base(job, False), "choices": [whole(text, finish)], "usage": token_usage(job)},
        headers={"x-genyard-prediction-id": job.id},
    )
