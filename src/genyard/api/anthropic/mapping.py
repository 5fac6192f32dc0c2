"""Anthropic's Messages request and response, mapped to a chat prediction and back.

Request fields: ``model``, ``messages`` (``user``/``assistant``, content a string or a
list of ``text`` blocks), ``system`` (a string or ``text`` blocks), ``max_tokens``
(required), ``stop_sequences``, ``temperature``, ``top_p``, ``top_k`` (only where the
model's input schema has it, else a 400), ``stream``. Accepted and ignored (they
concern Anthropic's own service): ``metadata``, ``service_tier``, ``cache_control``,
``inference_geo``, ``speed``, ``diagnostics``, ``user_profile_id``, ``workspace_id``,
``output_config.effort``. A 400 naming the field: another content block type,
``tools``/``tool_choice``, extended ``thinking``, ``output_config.format``,
``container``, ``mcp_servers``, and any unknown field. A sampling field the request
leaves out is left out of the prediction's input too, so the model's catalog
default applies.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from genyard.api import face_calls
from genyard.domain.catalog import ModelEntry
from genyard.domain.jobs import Job
from genyard.errors import InvalidRequest

#: Prediction input fields (as validation names them) -> the request's fields.
FIELD_NAMES = {
    "stop": "stop_sequences",
    "input": "body",
}


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class Thinking(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str


class OutputConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    effort: str | None = None  # ignored
    format: dict[str, Any] | None = None


class MessagesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    max_tokens: int = Field(ge=1)
    system: str | list[dict[str, Any]] | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stream: bool = False
    # ignored: they concern Anthropic's own service
    metadata: dict[str, Any] | None = None
    service_tier: str | None = None
    cache_control: dict[str, Any] | None = None
    inference_geo: str | None = None
    speed: str | None = None
    diagnostics: dict[str, Any] | None = None
    user_profile_id: str | None = None
    workspace_id: str | None = None
    output_config: OutputConfig | None = None
    # refused unless empty: genyard has no tools, containers or MCP servers
    container: Any = None
    mcp_servers: list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    thinking: Thinking | None = None


def _text(content: str | list[dict[str, Any]], where: str) -> str:
    """A string, or the text of a list of ``text`` blocks joined (other types: 400)."""
    if isinstance(content, str):
        return content
    parts = []
    for i, block in enumerate(content):
        kind = block.get("type")
        if kind != "text":
            raise InvalidRequest(
                f"{where}.{i}.type: content blocks of type {kind!r} are not supported here; "
                "send text (a string or blocks of type 'text')",
                {"field": f"{where}.{i}.type"},
            )
        text = block.get("text")
        if not isinstance(text, str):
            raise InvalidRequest(f"{where}.{i}.text: must be a string", {"field": f"{where}.{i}"})
        parts.append(text)
    return "".join(parts)


def _not_taken(entry: ModelEntry, name: str) -> InvalidRequest:
    return InvalidRequest(f"{name}: {entry.id} does not take {name}; leave it out", {"field": name})


def to_input(req: MessagesRequest, entry: ModelEntry) -> dict[str, Any]:
    """The chat prediction's input for the request."""
    if req.tools:
        raise InvalidRequest(f"tools: {entry.id} does not support tool use", {"field": "tools"})
    if req.tool_choice is not None:
        raise InvalidRequest("tool_choice: only valid with tools", {"field": "tool_choice"})
    if req.output_config is not None and req.output_config.format is not None:
        raise InvalidRequest(
            f"output_config.format: {entry.id} does not support structured outputs",
            {"field": "output_config.format"},
        )
    for name in ("container", "mcp_servers"):
        if getattr(req, name):
            raise InvalidRequest(f"{name}: not supported here", {"field": name})
    if req.thinking is not None and req.thinking.type != "disabled":
        raise InvalidRequest(
            f"thinking: {entry.id} does not support extended thinking", {"field": "thinking"}
        )
    system = _text(req.system, "system") if req.system is not None else None
    turns = [
        (message.role, _text(message.content, f"messages.{i}.content"))
        for i, message in enumerate(req.messages)
    ]
    input: dict[str, Any] = {
        "messages": face_calls.chat_messages(system, turns),
        "max_tokens": req.max_tokens,
    }
    if req.stop_sequences:
        input["stop"] = req.stop_sequences
    given = {name: getattr(req, name) for name in ("temperature", "top_p", "top_k")}
    input.update(face_calls.sampled(entry, given, lambda name: _not_taken(entry, name)))
    return input


def message_id(job: Job) -> str:
    """``msg_`` and the prediction id's random part (``pred_<x>`` -> ``msg_<x>``)."""
    return "msg_" + job.id.removeprefix("pred_")


def stop_reason(job: Job, stop_sequences: list[str] | None) -> tuple[str, str | None]:
    """(``stop_reason``, ``stop_sequence``): ``max_tokens`` when the limit cut the
    text; ``stop_sequence`` when the engine reports that one of the request's
    sequences matched (output ``stop_sequence``); else ``end_turn``."""
    _, finish = face_calls.output_text(job)
    if finish == "length":
        return "max_tokens", None
    output = job.output if isinstance(job.output, dict) else {}
    matched = output.get("stop_sequence")
    if isinstance(matched, str) and matched in (stop_sequences or []):
        return "stop_sequence", matched
    return "end_turn", None


def usage(job: Job) -> dict[str, int]:
    input_tokens, output_tokens = face_calls.tokens(job)
    return {"input_tokens": input_tokens, "output_tokens": output_tokens}


def message(job: Job, stop_sequences: list[str] | None) -> dict[str, Any]:
    """The Message object for a succeeded job."""
    text, _ = face_calls.output_text(job)
    reason, sequence = stop_reason(job, stop_sequences)
    return {
        "id": message_id(job),
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": text}],
        "model": job.model,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": usage(job),
    }
