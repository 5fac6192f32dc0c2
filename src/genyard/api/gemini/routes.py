"""The Gemini face's routes, under ``/llm/gemini/v1beta``. Model ids contain ``/``, so
each route takes the model as a path (``models/{model:path}:generateContent``: the
method is what follows the last ``:``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from genyard.api import face_calls
from genyard.api.deps import ServicesDep, json_body, require
from genyard.api.gemini import embed, mapping, stream
from genyard.api.native.stream import SSE_HEADERS
from genyard.api.responses import JSON
from genyard.domain.accounts import Principal, Scope
from genyard.domain.catalog import ModelEntry
from genyard.errors import InvalidRequest, NotFound
from genyard.services.container import Services

router = APIRouter(tags=["gemini"])

BASE = "/llm/gemini/v1beta/models"
CHAT_METHODS = ["generateContent", "streamGenerateContent"]
EMBED_METHODS = ["embedContent", "batchEmbedContents"]
Generate = Annotated[Principal, require(Scope.GENERATE)]


def _model_id(model: str) -> str:
    return model.removeprefix("models/")  # a client may repeat the collection


@router.post(BASE + "/{model:path}:generateContent")
async def generate_content(
    model: str, request: Request, services: ServicesDep, principal: Generate
) -> JSON:
    req = await json_body(request, mapping.GenerateRequest)
    entry = face_calls.model_for(services, _model_id(model), "chat")
    input = mapping.to_input(req, entry)
    job = await face_calls.run(services, principal, entry.id, input, names=mapping.FIELD_NAMES)
    return JSON(mapping.response(job))


@router.post(BASE + "/{model:path}:streamGenerateContent")
async def stream_generate_content(
    model: str,
    request: Request,
    services: ServicesDep,
    principal: Generate,
    alt: str | None = None,
) -> StreamingResponse:
    if alt not in (None, "sse", "json"):
        raise InvalidRequest(f"alt: expected 'sse' or 'json', not {alt!r}", {"field": "alt"})
    req = await json_body(request, mapping.GenerateRequest)
    entry = face_calls.model_for(services, _model_id(model), "chat")
    input = mapping.to_input(req, entry)
    job = await face_calls.start(services, principal, entry.id, input, names=mapping.FIELD_NAMES)
    if alt == "sse":
        body, media = stream.sse(services, job), "text/event-stream"
    else:
        body, media = stream.json_array(services, job), "application/json"
    return StreamingResponse(body, media_type=media, headers=SSE_HEADERS)


@router.post(BASE + "/{model:path}:embedContent")
async def embed_content(
    model: str, request: Request, services: ServicesDep, principal: Generate
) -> JSON:
    req = await json_body(request, embed.EmbedRequest)
    entry = face_calls.model_for(services, _model_id(model), "embedding")
    [vector] = await embed.embed(services, principal, entry, [req])
    return JSON({"embedding": {"values": vector}})


@router.post(BASE + "/{model:path}:batchEmbedContents")
async def batch_embed_contents(
    model: str, request: Request, services: ServicesDep, principal: Generate
) -> JSON:
    req = await json_body(request, embed.BatchRequest)
    entry = face_calls.model_for(services, _model_id(model), "embedding")
    vectors = await embed.embed(services, principal, entry, req.requests)
    return JSON({"embeddings": [{"values": v} for v in vectors]})


@router.post(BASE + "/{rest:path}", include_in_schema=False)
async def unknown_method(rest: str, _: Generate) -> Response:
    model, colon, method = rest.rpartition(":")
    if not colon:
        raise NotFound(f"POST models/{rest}: name a method, as models/<model>:generateContent")
    raise NotFound(
        f"models/{model}:{method}: unknown method; this face serves "
        + ", ".join(CHAT_METHODS + EMBED_METHODS)
    )


def _methods(entry: ModelEntry) -> list[str] | None:
    if face_calls.is_chat(entry):
        return CHAT_METHODS
    if entry.type == "embedding":
        return EMBED_METHODS
    return None


def _served(services: Services) -> list[tuple[ModelEntry, list[str]]]:
    """The models this face can call, with their methods (available ones only)."""
    served = []
    for entry in services.catalog.all():
        methods = _methods(entry)
        if methods and services.providers.availability(entry.provider, entry).available:
            served.append((entry, methods))
    return served


def _model(entry: ModelEntry, methods: list[str]) -> dict[str, Any]:
    props = entry.input_schema.get("properties", {})
    caps = entry.capabilities
    body: dict[str, Any] = {
        "name": f"models/{entry.id}",
        "baseModelId": entry.id,
        "version": "genyard",
        "displayName": entry.id.split("/", 1)[-1],
        "description": entry.description,
        "inputTokenLimit": caps.get("max_context", 512),
        "outputTokenLimit": caps.get("max_output_tokens", 0 if methods == EMBED_METHODS else 1),
        "supportedGenerationMethods": methods,
    }
    for ours, theirs in (("temperature", "temperature"), ("top_p", "topP"), ("top_k", "topK")):
        if "default" in props.get(ours, {}):
            body[theirs] = props[ours]["default"]
    if "maximum" in props.get("temperature", {}):
        body["maxTemperature"] = props["temperature"]["maximum"]
    return body


@router.get(BASE)
async def list_models(
    services: ServicesDep,
    _: Annotated[Principal, require(Scope.READ)],
    pageSize: int = 50,
    pageToken: str | None = None,
) -> JSON:
    served = _served(services)
    start = int(pageToken) if pageToken and pageToken.isdigit() else 0
    size = max(1, min(pageSize, 1000))
    page = served[start : start + size]
    body: dict[str, Any] = {"models": [_model(e, m) for e, m in page]}
    if start + size < len(served):
        body["nextPageToken"] = str(start + size)
    return JSON(body)


@router.get(BASE + "/{model:path}")
async def get_model(
    model: str, services: ServicesDep, _: Annotated[Principal, require(Scope.READ)]
) -> JSON:
    model_id = _model_id(model)
    for entry, methods in _served(services):
        if entry.id == model_id:
            return JSON(_model(entry, methods))
    raise NotFound(f"models/{model_id} is not found or not served by this face")
