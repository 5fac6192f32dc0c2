"""/v1/predictions: create (with Prefer: wait and Idempotency-Key), get, list, cancel."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from genyard.api import render
from genyard.api.deps import ServicesDep, json_body, require
from genyard.api.paging import decode_cursor, page
from genyard.api.responses import JSON
from genyard.domain.accounts import Principal, Scope
from genyard.domain.jobs import JobStatus
from genyard.errors import InvalidRequest
from genyard.services.container import Services
from genyard.services.predictions import SubmitRequest

router = APIRouter(tags=["predictions"])
_WAIT = re.compile(r"(?:^|[,;\s])wait(?:=(\d+(?:\.\d+)?))?(?:$|[,;\s])")


class PredictionCreate(BaseModel):
    """Body of ``POST /v1/predictions``."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=200, description="Model id, e.g. `owner/name`.")
    input: dict[str, Any] = Field(description="The model's input; see its `input_schema`.")
    is_public: bool = Field(
        default=False, description="Also serve outputs at permanent public URLs."
    )
    output_folder: str | None = Field(
        default=None, description="Folder for outputs: at most 256 characters, no `..`."
    )
    webhook: str | None = Field(default=None, description="URL called when the job ends.")
    webhook_url: str | None = Field(default=None, description="Same as `webhook`.")
    webhook_events: list[str] | None = Field(
        default=None,
        description="Events to deliver: start, output, logs, completed, failed. "
        "Default: completed, failed.",
    )


def wait_seconds(prefer: str | None, cap: float) -> float | None:
    """``Prefer: wait=N`` -> N (capped); bare ``wait`` -> the cap; absent -> None."""
    if not prefer:
        return None
    match = _WAIT.search(prefer.strip())
    if not match:
        return None
    return min(float(match.group(1)) if match.group(1) else cap, cap)


CREATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": PredictionCreate.model_json_schema()}},
    }
}


@router.post("/v1/predictions", status_code=201, openapi_extra=CREATE_BODY)
async def create_prediction(
    request: Request,
    services: ServicesDep,
    principal: Annotated[Principal, require(Scope.GENERATE)],
) -> JSON:
    body = await json_body(request, PredictionCreate)
    if body.webhook and body.webhook_url and body.webhook != body.webhook_url:
        raise InvalidRequest(
            "webhook and webhook_url differ; send one of them",
            {"errors": [{"field": "webhook_url", "message": "conflicts with webhook"}]},
        )
    req = SubmitRequest(
        model=body.model,
        input=body.input,
        is_public=body.is_public,
        output_folder=body.output_folder,
        webhook_url=body.webhook or body.webhook_url,
        webhook_events=body.webhook_events,
        idempotency_key=request.headers.get("idempotency-key"),
        webhook_field="webhook" if body.webhook else "webhook_url",
    )
    return await submit_and_respond(request, services, principal, req)


async def submit_and_respond(
    request: Request, services: Services, principal: Principal, req: SubmitRequest
) -> JSON:
    """Submit, honouring ``Prefer: wait``; the 201 both create routes answer."""
    wait = wait_seconds(request.headers.get("prefer"), services.settings.max_wait_seconds)
    submitted = await services.predictions.submit(
        principal.account_id, principal.user_id, principal.key_id, req, wait=wait
    )
    job = submitted.job
    headers = {"Location": f"{services.settings.resolved_public_url}/v1/predictions/{job.id}"}
    if submitted.replayed:
        headers["Idempotent-Replayed"] = "true"
    if wait is not None:
        headers["Preference-Applied"] = f"wait={wait:g}"
        if submitted.replayed:
            job = await services.predictions.wait(job.id, principal.account_id, wait)
    elif not submitted.replayed:
        job = await services.predictions.get(job.id, principal.account_id)  # queue position
    return JSON(render.prediction(job, services.files.links), status_code=201, headers=headers)


@router.get("/v1/predictions/{prediction_id}")
async def get_prediction(
    prediction_id: str,
    services: ServicesDep,
    principal: Annotated[Principal, require(Scope.READ)],
) -> JSON:
    job = await services.predictions.get(prediction_id, principal.account_id)
    return JSON(render.prediction(job, services.files.links))


@router.delete("/v1/predictions/{prediction_id}")
async def cancel_prediction(
    prediction_id: str,
    services: ServicesDep,
    principal: Annotated[Principal, require(Scope.GENERATE)],
) -> JSON:
    job = await services.predictions.cancel(prediction_id, principal.account_id)
    body = render.prediction(job, services.files.links)
    body["message"] = "Prediction canceled successfully"
    return JSON(body)


@router.get("/v1/predictions")
async def list_predictions(
    services: ServicesDep,
    principal: Annotated[Principal, require(Scope.READ)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
    status: JobStatus | None = None,
    model: str | None = None,
) -> JSON:
    before = decode_cursor(cursor) if cursor else None
    jobs = await services.predictions.list(
        principal.account_id,
        limit=limit + 1,
        before=before,
        status=status.value if status else None,
        model=model,
    )
    links = services.files.links
    return JSON(page(jobs, limit, lambda j: render.prediction(j, links, with_logs=False)))
