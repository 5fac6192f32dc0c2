"""The Anthropic face's routes: ``POST /llm/anthropic/v1/messages`` (plain and
streamed) and ``GET /llm/anthropic/v1/models`` (list and retrieve)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from genyard.api import face_calls
from genyard.api.anthropic import mapping, stream
from genyard.api.deps import ServicesDep, json_body, require
from genyard.api.native.stream import SSE_HEADERS
from genyard.api.responses import JSON
from genyard.domain.accounts import Principal, Scope
from genyard.domain.catalog import ModelEntry
from genyard.errors import NotFound
from genyard.services.container import Services

router = APIRouter(tags=["anthropic"])

#: genyard does not record when a model was released: every model shows this.
CREATED_AT = datetime(1970, 1, 1, tzinfo=UTC).isoformat().replace("+00:00", "Z")


@router.post("/llm/anthropic/v1/messages")
async def create_message(
    request: Request,
    services: ServicesDep,
    principal: Annotated[Principal, require(Scope.GENERATE)],
) -> Response:
    req = await json_body(request, mapping.MessagesRequest)
    entry = face_calls.model_for(services, req.model, "chat")
    input = mapping.to_input(req, entry)
    if req.stream:
        job = await face_calls.start(
            services, principal, entry.id, input, names=mapping.FIELD_NAMES
        )
        return StreamingResponse(
            stream.events(services, job, req.stop_sequences),
            media_type="text/event-stream",
            headers=SSE_HEADERS,
        )
    job = await face_calls.run(services, principal, entry.id, input, names=mapping.FIELD_NAMES)
    return JSON(mapping.message(job, req.stop_sequences))


def _model_info(entry: ModelEntry) -> dict[str, Any]:
    caps = entry.capabilities
    return {
        "type": "model",
        "id": entry.id,
        "display_name": entry.id.split("/", 1)[-1],
        "created_at": CREATED_AT,
        "lifecycle": "active",
        "max_input_tokens": caps.get("max_context"),
        "max_tokens": caps.get("max_output_tokens"),
    }


def _chat_models(services: Services) -> list[ModelEntry]:
    return [
        e
        for e in services.catalog.all("text")
        if face_calls.is_chat(e) and services.providers.availability(e.provider, e).available
    ]


@router.get("/llm/anthropic/v1/models")
async def list_models(
    services: ServicesDep,
    _: Annotated[Principal, require(Scope.READ)],
    limit: int = 20,
    after_id: str | None = None,
    before_id: str | None = None,
) -> JSON:
    entries = _chat_models(services)
    ids = [e.id for e in entries]
    if after_id in ids:
        entries = entries[ids.index(after_id) + 1 :]
    elif before_id in ids:
        entries = entries[: ids.index(before_id)]
    limit = max(1, min(limit, 1000))
    page = [_model_info(e) for e in entries[:limit]]
    return JSON(
        {
            "data": page,
            "has_more": len(entries) > limit,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
        }
    )


@router.get("/llm/anthropic/v1/models/{model_id:path}")
async def get_model(
    model_id: str,
    services: ServicesDep,
    _: Annotated[Principal, require(Scope.READ)],
) -> JSON:
    for entry in _chat_models(services):
        if entry.id == model_id:
            return JSON(_model_info(entry))
    raise NotFound(f"model: {model_id!r} is not a chat model served here")
