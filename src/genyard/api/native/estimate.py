"""POST /v1/estimate: what a prediction would cost and how long it would take."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from genyard.api.deps import ServicesDep, json_body, require
from genyard.api.responses import JSON
from genyard.domain.accounts import Principal, Scope

router = APIRouter(tags=["predictions"])


class EstimateCreate(BaseModel):
    """Body of ``POST /v1/estimate``: a prediction's ``model`` and ``input``."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=200, description="Model id, e.g. `owner/name`.")
    input: dict[str, Any] = Field(description="The model's input; see its `input_schema`.")


ESTIMATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": EstimateCreate.model_json_schema()}},
    }
}


@router.post("/v1/estimate", openapi_extra=ESTIMATE_BODY)
async def estimate(
    request: Request,
    services: ServicesDep,
    principal: Annotated[Principal, require(Scope.READ)],
) -> JSON:
    """Read-only: nothing is queued, held or stored."""
    body = await json_body(request, EstimateCreate)
    found = await services.estimates.estimate(body.model, body.input)
    return JSON(found.to_dict())
