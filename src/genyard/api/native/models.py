"""/v1/models: the catalog, with availability, schemas and a ready-to-copy example."""

from __future__ import annotations

import json
import shlex
from typing import Annotated, Any

from fastapi import APIRouter

from genyard.api.deps import ServicesDep, require
from genyard.api.responses import JSON
from genyard.domain.accounts import Principal, Scope
from genyard.domain.catalog import MODEL_TYPES, ModelEntry
from genyard.errors import InvalidRequest, NotFound
from genyard.services.container import Services

router = APIRouter(tags=["models"])


def _summary(entry: ModelEntry, services: Services) -> dict[str, Any]:
    availability = services.providers.availability(entry.provider, entry)
    body: dict[str, Any] = {
        "id": entry.id,
        "type": entry.type,
        "owner": entry.owner,
        "description": entry.description,
        "languages": list(entry.languages),
        "available": availability.available,
    }
    if not availability.available:
        body["reason"] = availability.reason
        body["fix"] = availability.fix
    return body


def curl_example(entry: ModelEntry, base_url: str) -> str:
    payload = json.dumps({"model": entry.id, "input": entry.example_input}, ensure_ascii=False)
    return (
        f"curl -X POST {base_url}/v1/predictions \\\n"
        '  -H "Content-Type: application/json" \\\n'
        '  -H "X-API-Key: $GENYARD_API_KEY" \\\n'
        '  -H "Prefer: wait=30" \\\n'
        f"  -d {shlex.quote(payload)}"
    )


@router.get("/v1/models")
async def list_models(
    services: ServicesDep,
    _: Annotated[Principal, require(Scope.READ)],
    type: str | None = None,
) -> JSON:
    if type is not None and type not in MODEL_TYPES:
        raise InvalidRequest(
            f"type: unknown model type {type!r}",
            {"errors": [{"field": "type", "message": f"expected one of {sorted(MODEL_TYPES)}"}]},
        )
    entries = services.catalog.all(type)
    defaults = services.catalog.defaults()
    if type is not None:
        defaults = {type: defaults[type]} if type in defaults else {}
    return JSON({"data": [_summary(e, services) for e in entries], "defaults": defaults})


@router.get("/v1/models/{model_id:path}")
async def get_model(
    model_id: str,
    services: ServicesDep,
    _: Annotated[Principal, require(Scope.READ)],
) -> JSON:
    entry = services.catalog.get(model_id)
    if entry is None:
        raise NotFound(f"no model with id {model_id!r}")
    body = _summary(entry, services)
    defaults = [
        t for t in MODEL_TYPES if (d := services.catalog.default_for(t)) and d.id == entry.id
    ]
    body.update(
        {
            "input_schema": entry.input_schema,
            "capabilities": entry.capabilities,
            "pricing": entry.pricing.to_dict(),
            "limits": {
                "timeout": entry.limits.timeout,
                "queue_timeout": entry.limits.queue_timeout,
                "max_input_bytes": entry.limits.max_input_bytes,
                "max_running": entry.limits.max_running,
            },
            "default_for": sorted(defaults),
            "example": {
                "input": entry.example_input,
                "curl": curl_example(entry, services.settings.resolved_public_url),
            },
        }
    )
    return JSON(body)
