"""The tasks face's routes: submit a video task, read it, cancel it.

``POST /v1/tasks/{task_id}/cancel`` is genyard's: the seed shows ``task_info.can_cancel``
but no cancel route, so this one follows the usual task APIs' form.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Request

from genyard.api.deps import ServicesDep, json_body, require
from genyard.api.responses import JSON
from genyard.api.tasks import render
from genyard.api.tasks.errors import invalid_task_id, task_not_found
from genyard.api.tasks.requests import (
    TaskCreate,
    check_video_model,
    in_face_terms,
    is_task_id,
    new_task_id,
    submit_request,
    video_model,
)
from genyard.domain.accounts import Principal, Scope
from genyard.domain.jobs import Job
from genyard.errors import Conflict, InvalidRequest, NotFound
from genyard.services.container import Services

router = APIRouter(tags=["tasks"])

CREATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": TaskCreate.model_json_schema()}},
    }
}


async def present(services: Services, job: Job) -> dict[str, Any]:
    """The task object; a task not ended yet gets the model's time estimate."""
    entry = services.catalog.get(job.model)
    estimate = None
    if entry is not None and not job.status.is_terminal():
        estimate = (await services.estimates.time(entry, job.input)).seconds
    return render.task(job, entry, services.files.links, now=time.time(), estimate=estimate)


async def find(services: Services, task_id: str, account_id: str) -> Job:
    if not is_task_id(task_id):
        raise invalid_task_id(task_id)
    try:
        return await services.predictions.get_task(task_id, account_id)
    except NotFound:
        raise task_not_found(task_id) from None


@router.post("/v1/videos/generations", openapi_extra=CREATE_BODY)
async def create_task(
    request: Request,
    services: ServicesDep,
    principal: Annotated[Principal, require(Scope.GENERATE)],
) -> JSON:
    body = await json_body(request, TaskCreate)
    entry = services.predictions.available_model(video_model(services.catalog, body.model))
    check_video_model(entry)
    req = submit_request(body, entry.id, new_task_id())
    try:
        submitted = await services.predictions.submit(
            principal.account_id, principal.user_id, principal.key_id, req
        )
    except InvalidRequest as exc:
        raise in_face_terms(exc) from None
    job = await services.predictions.get(submitted.job.id, principal.account_id)
    return JSON(await present(services, job))


@router.get("/v1/tasks/{task_id}")
async def get_task(
    task_id: str,
    services: ServicesDep,
    principal: Annotated[Principal, require(Scope.READ)],
) -> JSON:
    return JSON(await present(services, await find(services, task_id, principal.account_id)))


@router.post("/v1/tasks/{task_id}/cancel")
async def cancel_task(
    task_id: str,
    services: ServicesDep,
    principal: Annotated[Principal, require(Scope.GENERATE)],
) -> JSON:
    job = await find(services, task_id, principal.account_id)
    try:
        job = await services.predictions.cancel(job.id, principal.account_id)
    except Conflict:
        ended = await services.predictions.get(job.id, principal.account_id)
        raise Conflict(
            f"task {task_id} has already ended ({render.task_status(ended)}); "
            "it cannot be canceled",
            {"param": "task_id", "status": render.task_status(ended)},
        ) from None
    return JSON(await present(services, job))
