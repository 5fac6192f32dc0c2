"""``POST /llm/openai/v1/chat/completions``: a chat model's prediction, whole or streamed.

The request becomes the model's input: ``messages`` (``developer`` read as
``system``; content as a string or a list of text parts), and ``temperature``,
``top_p``, ``max_completion_tokens`` (or ``max_tokens``), ``stop`` and ``seed`` where
the request gives them: an omitted one is left out of the input, so the model's
catalog default applies. ``tools`` and ``response_format`` go to models whose
capabilities say they take them; elsewhere they are a 400 naming the field
(``response_format: {"type": "text"}`` is always fine). ``n`` above 1 is a 400.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from genyard.api.deps import ServicesDep, json_body
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

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


class StreamOptions(BaseModel):
    include_usage: bool | None = None


class ChatRequest(BaseModel):
    model: str
    messages: list[dict[str, Any]]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    response_format: dict[str, Any] | None = None
    logprobs: bool | None = None


def _content(index: int, content: Any) -> str:
    """A message's text: a string, or the text parts of a list joined."""
    where = f"messages[{index}].content"
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad_param(where, "must be a string or a list of content parts")
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind != "text" or not isinstance(part.get("text"), str):
            raise bad_param(
                f"{where}[{j}]",
                f"only text parts are supported here, got {kind or type(part).__name__!r}",
            )
        texts.append(part["text"])
    return "".join(texts)


def _messages(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    if not messages:
        raise bad_param("messages", "must hold at least one message")
    out = []
    for i, message in enumerate(messages):
        role = message.get("role")
        if role not in ROLES:
            raise bad_param(
                f"messages[{i}].role",
                f"{role!r} is not supported: use system, developer, user or assistant "
                "(tool messages need a model with tools)",
            )
        if message.get("tool_calls"):
            raise bad_param(f"messages[{i}].tool_calls", "tool calls need a model with tools")
        out.append({"role": ROLES[role], "content": _content(i, message.get("content"))})
    return out


def _check_features(entry: ModelEntry, body: ChatRequest) -> dict[str, Any]:
    """Input fields for the optional features, or a 400 naming the one not supported."""
    caps = entry.capabilities
    extra: dict[str, Any] = {}
    if body.n is not None and body.n != 1:
        raise bad_param("n", "only 1 choice per request is supported (send n requests)")
    if body.logprobs:
        raise bad_param("logprobs", f"{entry.id} does not return log probabilities")
    if body.tools:
        if not caps.get("tools"):
            raise bad_param("tools", f"{entry.id} does not support tools (function calling)")
        extra["tools"] = body.tools
    if body.tool_choice not in (None, "none"):
        if not caps.get("tools"):
            raise bad_param("tool_choice", f"{entry.id} does not support tools")
        extra["tool_choice"] = body.tool_choice
    if body.response_format is not None and body.response_format.get("type") != "text":
        if not caps.get("response_format"):
            kind = body.response_format.get("type")
            raise bad_param(
                "response_format",
                f"{entry.id} does not support response_format {kind!r} (only 'text')",
            )
        extra["response_format"] = body.response_format
    return extra


def chat_input(entry: ModelEntry, body: ChatRequest) -> dict[str, Any]:
    """The prediction's input: only what the request gives (catalog defaults fill the rest)."""
    if "chat" not in entry.capabilities.get("modes", ()):
        hint = " (use POST /llm/openai/v1/completions)" if entry.type == "text" else ""
        raise InvalidRequest(f"model: {entry.id} is not a chat model{hint}", {"field": "model"})
    input: dict[str, Any] = {"messages": _messages(body.messages)}
    max_tokens = (
        body.max_tokens if body.max_completion_tokens is None else body.max_completion_tokens
    )
    given = {
        "temperature": body.temperature,
        "top_p": body.top_p,
        "max_tokens": max_tokens,
        "stop": body.stop,
        "seed": body.seed,
    }
    input.update({name: value for name, value in given.items() if value is not None})
    input.update(_check_features(entry, body))
    return input


def _base(job_id: str, model: str, created: int, obj: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{job_id}",
        "object": obj,
        "created": created,
        "model": model,
        "system_fingerprint": None,
    }


def _delta(text: str | None, finish: str | None) -> dict[str, Any]:
    delta = {"content": text} if text is not None else {}
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}


@router.post("/llm/openai/v1/chat/completions")
async def create_chat_completion(
    request: Request, services: ServicesDep, principal: Generate
) -> Response:
    body = await json_body(request, ChatRequest)
    entry = find_model(services, body.model)
    input = chat_input(entry, body)
    if body.stream:
        with openai_names():
            job = await submit_prediction(services, principal, entry.id, input)
        base = _base(job.id, entry.id, int(job.created_at), "chat.completion.chunk")
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        first = {
            "index": 0,
            "delta": {"role": "assistant", "content": ""},
            "logprobs": None,
            "finish_reason": None,
        }
        stream = chunks(services, job, base, _delta, include_usage=include_usage, first=first)
        return event_stream(stream, job)
    with openai_names():
        job = await run_prediction(services, principal, entry.id, input)
    output = job.output if isinstance(job.output, dict) else {}
    message = {"role": "assistant", "content": str(output.get("text", "")), "refusal": None}
    return JSON(
        {
            **_base(job.id, entry.id, int(job.created_at or time.time()), "chat.completion"),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": finish_reason(job),
                }
            ],
            "usage": token_usage(job),
        },
        headers={"x-genyard-prediction-id": job.id},
    )
