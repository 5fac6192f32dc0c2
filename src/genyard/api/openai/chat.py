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

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from genyard.api.deps import ServicesDep, json_body
from genyard.api.openai import text
from genyard.api.openai.common import Generate, find_model
from genyard.api.openai.errors import bad_param
from genyard.domain.catalog import ModelEntry
from genyard.errors import InvalidRequest

router = APIRouter(tags=["openai"])

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


class ChatRequest(text.TextRequest):
    messages: list[dict[str, Any]]
    max_completion_tokens: int | None = None
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
    input: dict[str, Any] = {"messages": _messages(body.messages), **body.sampling()}
    if body.max_completion_tokens is not None:
        input["max_tokens"] = body.max_completion_tokens
    input.update(_check_features(entry, body))
    return input


def _delta(text: str | None, finish: str | None) -> dict[str, Any]:
    delta = {"content": text} if text is not None else {}
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}


def _whole(text: str | None, finish: str | None) -> dict[str, Any]:
    message = {"role": "assistant", "content": text or "", "refusal": None}
    return {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}


#: id, object, created, model and system_fingerprint of an answer or chunk.
BASE = text.base_maker("chatcmpl-", "chat.completion", "chat.completion.chunk")


#: The first chunk of a stream, before any token.
FIRST = {
    "index": 0,
    "delta": {"role": "assistant", "content": ""},
    "logprobs": None,
    "finish_reason": None,
}


@router.post("/llm/openai/v1/chat/completions")
async def create_chat_completion(
    request: Request, services: ServicesDep, principal: Generate
) -> Response:
    body = await json_body(request, ChatRequest)
    entry = find_model(services, body.model)
    input = chat_input(entry, body)
    return await text.answer(
        services, principal, entry, input, body, base=BASE, delta=_delta, whole=_whole, first=FIRST
    )
