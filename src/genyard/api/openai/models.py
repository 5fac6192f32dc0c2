"""``GET /llm/openai/v1/models`` and ``GET /llm/openai/v1/models/{model}``.

OpenAI's model object (``id``, ``object: "model"``, ``created``, ``owned_by``) for every
catalog model, plus genyard's ``type`` and ``available`` (the SDK keeps extra fields).
The catalog has no dates: ``created`` is when this server process started. Model ids
contain ``/``, so the retrieve route takes the rest of the path; an unknown id is a
404 ``model_not_found``.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from genyard.api.deps import ServicesDep
from genyard.api.openai.common import Read
from genyard.api.openai.errors import model_not_found
from genyard.api.responses import JSON
from genyard.domain.catalog import ModelEntry
from genyard.services.container import Services

router = APIRouter(tags=["openai"])
STARTED = int(time.time())


def model_object(entry: ModelEntry, services: Services) -> dict[str, Any]:
    availability = services.providers.availability(entry.provider, entry)
    return {
        "id": entry.id,
        "object": "model",
        "created": STARTED,
        "owned_by": entry.owner,
        "type": entry.type,
        "available": availability.available,
    }


@router.get("/llm/openai/v1/models")
async def list_models(services: ServicesDep, _: Read) -> JSON:
    return JSON(
        {"object": "list", "data": [model_object(e, services) for e in services.catalog.all()]}
    )


@router.get("/llm/openai/v1/models/{model:path}")
async def retrieve_model(model: str, services: ServicesDep, _: Read) -> JSON:
    entry = services.catalog.get(model)
    if entry is None:
        raise model_not_found(model)
    return JSON(model_object(entry, services))
