"""``POST /llm/openai/v1/completions``: a completion model continues a prompt.

``prompt`` is one string (or a list holding one); ``max_tokens``, ``temperature``,
``top_p``, ``stop`` and ``seed`` go to the model where the request gives them (the
catalog's defaults otherwise); ``stream`` and ``stream_options.include_usage`` work as
on chat completions. ``n``/``best_of`` above 1, ``echo``, ``suffix`` and ``logprobs``
are a 400 naming the field; ``frequency_penalty``, ``presence_penalty``,
``logit_bias`` and ``user`` are ignored.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from genyard.api.deps import ServicesDep, json_body
from genyard.api.openai.chat import StreamOptions
from genyard.api.openai.common import (
    Generate,
    find_model,
    run_prediction,
    submit_prediction,
    token_usage,
)
from genyard.api.openai.errors import bad_param, openai_names
from genyard.api.openai.streaming import chunks, event_stream, finish_reason
from genyard.api.responses import JSON
from genyard.domain.catalog import ModelEntry
from genyard.errors import InvalidRequest

router = APIRouter(tags=["openai"])


class CompletionRequest(BaseModel):
    model: str
    prompt: str | list[Any]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = None
    best_of: int | None = None
    echo: bool | None = None
    suffix: str | None = None
    logprobs: int | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None


def _prompt(prompt: str | list[Any]) -> str:
    if isinstance(prompt, str):
        return prompt
    if len(prompt) == 1 and isinstance(prompt[0], str):
        return prompt[0]
    raise bad_param("prompt", "must be one string (token arrays and batches are not supported)")


def completion_input(entry: ModelEntry, body: CompletionRequest) -> dict[str, Any]:
    if "completion" not in entry.capabilities.get("modes", ()):
        hint = " (use POST /llm/openai/v1/chat/completions)" if entry.type == "text" else ""
        raise InvalidRequest(
            f"model: {entry.id} is not a completion model{hint}", {"field": "model"}
        )
    for name in ("n", "best_of"):
        if getattr(body, name) not in (None, 1):
            raise bad_param(name, "only 1 completion per request is supported")
    if body.echo:
        raise bad_param("echo", "echoing the prompt is not supported")
    if body.suffix:
        raise bad_param("suffix", f"{entry.id} does not support suffix (insertion)")
    if body.logprobs:
        raise bad_param("logprobs", f"{entry.id} does not return log probabilities")
    input: dict[str, Any] = {"prompt": _prompt(body.prompt)}
    given = {
        "max_tokens": body.max_tokens,
        "temperature": body.temperature,
        "top_p": body.top_p,
        "stop": body.stop,
        "seed": body.seed,
    }
    input.update({name: value for name, value in given.items() if value is not None})
    return input


def _base(job_id: str, model: str, created: int) -> dict[str, Any]:
    return {
        "id": f"cmpl-{job_id}",
        "object": "text_completion",
        "created": created,
        "model": model,
        "system_fingerprint": None,
    }


def _choice(text: str | None, finish: str | None) -> dict[str, Any]:
    return {"text": text or "", "index": 0, "logprobs": None, "finish_reason": finish}


@router.post("/llm/openai/v1/completions")
async def create_completion(
    request: Request, services: ServicesDep, principal: Generate
) -> Response:
    body = await json_body(request, CompletionRequest)
    entry = find_model(services, body.model)
    input = completion_input(entry, body)
    if body.stream:
        with openai_names():
            job = await submit_prediction(services, principal, entry.id, input)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        base = _base(job.id, entry.id, int(job.created_at))
        return event_stream(chunks(services, job, base, _choice, include_usage=include_usage), job)
    with openai_names():
        job = await run_prediction(services, principal, entry.id, input)
    output = job.output if isinstance(job.output, dict) else {}
    return JSON(
        {
            **_base(job.id, entry.id, int(job.created_at)),
            "choices": [_choice(str(output.get("text", "")), finish_reason(job))],
            "usage": token_usage(job),
        },
        headers={"x-genyard-prediction-id": job.id},
    )
