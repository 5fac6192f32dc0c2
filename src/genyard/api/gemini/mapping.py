"""Gemini's GenerateContentRequest, mapped to a chat prediction, and the
GenerateContentResponse built from its job.

Fields (camelCase, or snake_case as Google's JSON mapping also accepts): ``contents``
(``user``/``model`` turns of ``text`` parts), ``systemInstruction``,
``generationConfig`` {``temperature``, ``topP``, ``topK`` (only where the model's input
schema has it), ``maxOutputTokens``, ``stopSequences``, ``candidateCount`` (1 only),
``seed``, ``responseMimeType`` (``text/plain`` only)}. Accepted and ignored:
``safetySettings``, ``labels``, ``generationConfig.thinkingConfig``. A 400 naming the
field: another part type, ``tools``, ``toolConfig``, ``cachedContent``, a JSON
response schema, penalties, logprobs, and any unknown field. A sampling field left
out stays out of the prediction's input, so the model's catalog default applies.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from genyard.api import face_calls
from genyard.domain.catalog import ModelEntry
from genyard.domain.jobs import Job
from genyard.errors import InvalidRequest

#: Prediction input fields (as validation names them) -> the request's fields.
FIELD_NAMES = {
    "max_tokens": "generationConfig.maxOutputTokens",
    "stop": "generationConfig.stopSequences",
    "temperature": "generationConfig.temperature",
    "top_p": "generationConfig.topP",
    "top_k": "generationConfig.topK",
    "seed": "generationConfig.seed",
    "messages": "contents",
    "input": "body",
}

ROLES = {"user": "user", "model": "assistant"}


class Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Content(Camel):
    role: str | None = None
    parts: list[dict[str, Any]] = Field(default_factory=list)


class GenerationConfig(Camel):
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_output_tokens: int | None = None
    stop_sequences: list[str] | None = None
    candidate_count: int | None = None
    seed: int | None = None
    response_mime_type: str | None = None
    thinking_config: dict[str, Any] | None = None  # ignored: no thinking here
    # refused when set: this face serves plain text
    response_schema: Any = None
    response_json_schema: Any = None
    response_modalities: list[str] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    response_logprobs: bool | None = None
    logprobs: int | None = None


class GenerateRequest(Camel):
    contents: list[Content] = Field(min_length=1)
    system_instruction: Content | str | None = None
    generation_config: GenerationConfig | None = None
    safety_settings: list[dict[str, Any]] | None = None  # ignored
    labels: dict[str, str] | None = None  # ignored
    tools: list[dict[str, Any]] | None = None
    tool_config: dict[str, Any] | None = None
    cached_content: str | None = None
    model: str | None = None  # the URL names the model; a body copy is ignored


def text_of(content: Content | str, where: str) -> str:
    """The text of a Content's parts joined (a part without text: 400)."""
    if isinstance(content, str):
        return content
    pieces = []
    for i, part in enumerate(content.parts):
        text = part.get("text")
        if not isinstance(text, str):
            kind = next((k for k in part if k not in ("thought", "thoughtSignature")), "empty")
            raise InvalidRequest(
                f"{where}.parts[{i}]: {kind!r} parts are not supported here; send text parts",
                {"field": f"{where}.parts[{i}]"},
            )
        if not part.get("thought"):
            pieces.append(text)
    return "".join(pieces)


def _not_taken(entry: ModelEntry, name: str) -> InvalidRequest:
    return InvalidRequest(f"{FIELD_NAMES[name]}: {entry.id} does not take it; leave it out", {})


def _refuse(value: Any, field: str, what: str) -> None:
    if value:
        raise InvalidRequest(f"{field}: {what}", {"field": field})


def to_input(req: GenerateRequest, entry: ModelEntry) -> dict[str, Any]:
    """The chat prediction's input for the request."""
    _refuse(req.tools, "tools", f"{entry.id} does not support function calling or tools")
    _refuse(req.tool_config, "toolConfig", "only valid with tools")
    _refuse(req.cached_content, "cachedContent", "cached contents are not supported here")
    system = None
    if req.system_instruction is not None:
        system = text_of(req.system_instruction, "systemInstruction")
    turns = []
    for i, content in enumerate(req.contents):
        role = ROLES.get(content.role or "user")
        if role is None:
            raise InvalidRequest(
                f"contents[{i}].role: must be 'user' or 'model', not {content.role!r}",
                {"field": f"contents[{i}].role"},
            )
        turns.append((role, text_of(content, f"contents[{i}]")))
    input: dict[str, Any] = {"messages": face_calls.chat_messages(system, turns)}
    config = req.generation_config or GenerationConfig()
    _check_config(config, entry)
    given = {
        "max_tokens": config.max_output_tokens,
        "stop": config.stop_sequences or None,
        "temperature": config.temperature,
        "top_p": config.top_p,
        "top_k": config.top_k,
        "seed": config.seed,
    }
    input.update(face_calls.sampled(entry, given, lambda name: _not_taken(entry, name)))
    return input


def _check_config(config: GenerationConfig, entry: ModelEntry) -> None:
    where = "generationConfig"
    if config.candidate_count not in (None, 1):
        raise InvalidRequest(
            f"{where}.candidateCount: {entry.id} answers one candidate; send 1 or leave it out",
            {"field": f"{where}.candidateCount"},
        )
    if config.response_mime_type not in (None, "text/plain"):
        raise InvalidRequest(
            f"{where}.responseMimeType: only text/plain is supported by {entry.id}",
            {"field": f"{where}.responseMimeType"},
        )
    _refuse(config.response_schema, f"{where}.responseSchema", "JSON output is not supported")
    _refuse(
        config.response_json_schema, f"{where}.responseJsonSchema", "JSON output is not supported"
    )
    if config.response_modalities and config.response_modalities != ["TEXT"]:
        raise InvalidRequest(f"{where}.responseModalities: only TEXT is supported", {})
    for name in ("presence_penalty", "frequency_penalty", "response_logprobs", "logprobs"):
        _refuse(getattr(config, name), f"{where}.{to_camel(name)}", "not supported here")


def finish_reason(job: Job) -> str:
    _, finish = face_calls.output_text(job)
    return "MAX_TOKENS" if finish == "length" else "STOP"


def usage_metadata(job: Job) -> dict[str, int]:
    prompt, candidates = face_calls.tokens(job)
    return {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates,
    }


def chunk(job: Job, text: str, *, final: bool) -> dict[str, Any]:
    """A GenerateContentResponse: the whole answer, or one piece of a stream (the
    final piece carries ``finishReason`` and ``usageMetadata``)."""
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
    if final:
        candidate["finishReason"] = finish_reason(job)
    candidate["index"] = 0
    body: dict[str, Any] = {"candidates": [candidate]}
    if final:
        body["usageMetadata"] = usage_metadata(job)
    body["modelVersion"] = job.model
    body["responseId"] = job.id
    return body


def response(job: Job) -> dict[str, Any]:
    text, _ = face_calls.output_text(job)
    return chunk(job, text, final=True)
