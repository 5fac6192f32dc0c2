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
from starlette.responses import Response

from genyard.api.deps import ServicesDep, json_body
from genyard.api.openai import text
from genyard.api.openai.common import Generate, find_model
from genyard.api.openai.errors import bad_param
from genyard.domain.catalog import ModelEntry
from genyard.errors import InvalidRequest

router = APIRouter(tags=["openai"])


class CompletionRequest(text.TextRequest):
    prompt: str | list[Any]
    best_of: int | None = None
    echo: bool | None = None
    suffix: str | None = None
    logprobs: int | None = None


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
    return {"prompt": _prompt(body.prompt), **body.sampling()}


#: id, object, created, model and system_fingerprint of an answer or chunk.
BASE = text.base_maker("cmpl-", "text_completion", "text_completion")


def _choice(text: str | None, finish: str | None) -> dict[str, Any]:
    return {"text": text or "", "index": 0, "logprobs": None, "finish_reason": finish}


@router.post("/llm/openai/v1/completions")
async def create_completion(
    request: Request, services: ServicesDep, principal: Generate
) -> Response:
    body = await json_body(request, CompletionRequest)
    entry = find_model(services, body.model)
    input = completion_input(entry, body)
    return await text.answer(
        services, principal, entry, input, body, base=BASE, delta=_choice, whole=_choice
    )
