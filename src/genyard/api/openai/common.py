"""What every OpenAI route shares: the caller (with OpenAI's 401 and 403 messages),
models looked up as OpenAI does (404 for an unknown one), predictions run within
``llm_wait_seconds``, and usage and files read back from a job."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from genyard.api.deps import ServicesDep, api_key_from, get_principal
from genyard.api.openai.errors import PREFIX, job_failed, model_not_found
from genyard.domain.accounts import Principal, Scope
from genyard.domain.catalog import ModelEntry
from genyard.domain.files import UploadedFile
from genyard.domain.jobs import Job, JobStatus
from genyard.errors import Forbidden, InvalidRequest, Unauthorized
from genyard.services.container import Services
from genyard.services.predictions import SubmitRequest
from genyard.storage.base import BlobNotFound
from genyard.storage.keys import InvalidKey

MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)


def masked(key: str) -> str:
    """``gy_liv***********cdef``, as OpenAI shows a wrong key."""
    if len(key) <= 10:
        return "*" * len(key)
    return key[:6] + "*" * (len(key) - 10) + key[-4:]


async def openai_principal(request: Request, services: ServicesDep) -> Principal:
    """The caller, or a 401 worded as OpenAI's (the key masked)."""
    try:
        return await get_principal(request, services)
    except Unauthorized:
        key = api_key_from(request)
        if key is None:
            raise Unauthorized(MISSING_KEY) from None
        raise Unauthorized(
            f"Incorrect API key provided: {masked(key)}. Check the key, or create one "
            "with POST /v1/keys or `genyard keys create`."
        ) from None


def scoped(scope: Scope) -> Any:
    """A dependency: the caller, when its key has ``scope`` (else a 403)."""

    async def check(
        principal: Annotated[Principal, Depends(openai_principal)],
    ) -> Principal:
        if not principal.has(scope):
            raise Forbidden(
                "You have insufficient permissions for this operation. "
                f"Missing scopes: {scope.value}.",
                {"required_scope": scope.value},
            )
        return principal

    return Depends(check)


Generate = Annotated[Principal, scoped(Scope.GENERATE)]
Read = Annotated[Principal, scoped(Scope.READ)]


def find_model(services: Services, model_id: str) -> ModelEntry:
    """The catalog entry (404 ``model_not_found`` when unknown) whose provider can run
    here (400 naming ``model`` with the reason when it cannot)."""
    if services.catalog.get(model_id) is None:
        raise model_not_found(model_id)
    return services.predictions.available_model(model_id)


def wrong_type(entry: ModelEntry, route: str, wanted: str) -> InvalidRequest:
    return InvalidRequest(
        f"model: {entry.id} is a {entry.type} model, not {wanted}: "
        f"{route} serves {wanted} models (GET {PREFIX}/models lists them)",
        {"field": "model"},
    )


async def run_prediction(
    services: Services,
    principal: Principal,
    model: str,
    input: dict[str, Any],
    uploads: list[UploadedFile] | None = None,
) -> Job:
    """Run a prediction to its end within ``llm_wait_seconds`` (504 past it, the job
    canceled); a job that did not succeed raises its error in OpenAI's terms."""
    job = await services.predictions.run(
        principal.account_id,
        principal.user_id,
        principal.key_id,
        SubmitRequest(model=model, input=input, uploads=uploads or []),
        limit_seconds=services.settings.llm_wait_seconds,
    )
    if job.status is not JobStatus.SUCCEEDED:
        raise job_failed(job)
    return job


async def submit_prediction(
    services: Services, principal: Principal, model: str, input: dict[str, Any]
) -> Job:
    """Queue a prediction (for streaming: its events are followed)."""
    submitted = await services.predictions.submit(
        principal.account_id,
        principal.user_id,
        principal.key_id,
        SubmitRequest(model=model, input=input),
    )
    return submitted.job


def token_usage(job: Job) -> dict[str, int]:
    """OpenAI's usage from the job's ``input_tokens`` and ``output_tokens``."""
    usage = job.usage or {}
    prompt = int(usage.get("input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


async def read_output_file(services: Services, url: str) -> tuple[bytes, str]:
    """The bytes and content type of a file the job's output names (read from the blob
    store, never over HTTP)."""
    try:
        own = services.files.links.parse(url)
        if own is None:
            raise InvalidKey(url)
        data, stored = await services.blobs.get(own.key)
    except (InvalidKey, BlobNotFound) as exc:
        raise RuntimeError(f"the output file {url} cannot be read: {exc}") from exc
    return data, stored.content_type
