"""What the vendor LLM faces (Anthropic, Gemini) share: picking a model of the right
kind, running a call as a prediction, and turning a job that ended badly into an error.

Every call is a prediction row (history, billing, usage). A non-streaming call waits
``Settings.llm_wait_seconds`` (:meth:`PredictionService.run`: past it the job is
canceled, its hold released, and a 504 raised); a streaming call submits the job and
follows it (:func:`genyard.services.job_events.follow`). Each face renders the errors
raised here in its own shape.
"""

from __future__ import annotations

from typing import Any

from genyard.domain.accounts import Principal
from genyard.domain.catalog import ModelEntry
from genyard.domain.jobs import Job, JobStatus
from genyard.errors import (
    Conflict,
    GatewayTimeout,
    GenyardError,
    InternalError,
    InvalidRequest,
    JobErrorCode,
    NotFound,
)
from genyard.services.container import Services
from genyard.services.predictions import SubmitRequest


class ServiceUnavailable(GenyardError):
    """The model's engine cannot run here (a job failed ``provider_unavailable``)."""

    code = "unavailable"
    status = 503


def is_chat(entry: ModelEntry) -> bool:
    return entry.type == "text" and "chat" in entry.capabilities.get("modes", ())


def model_for(services: Services, model_id: str, kind: str) -> ModelEntry:
    """The model to run: 404 when the catalog has no such model, 400 when it is not of
    ``kind`` (``chat``: a text model with the chat mode; else a model type) or cannot
    run here."""
    entry = services.catalog.get(model_id)
    if entry is None:
        raise NotFound(f"model {model_id!r} not found; list the models to see which exist")
    fits = is_chat(entry) if kind == "chat" else entry.type == kind
    if not fits:
        wanted = "a chat model (type text, mode chat)" if kind == "chat" else f"a {kind} model"
        raise InvalidRequest(
            f"model: {entry.id} is a {entry.type} model "
            f"(modes: {', '.join(entry.capabilities.get('modes', ())) or 'none'}); "
            f"this endpoint needs {wanted}",
            {"field": "model"},
        )
    return services.predictions.available_model(entry.id)


def sampling_supported(entry: ModelEntry, field: str) -> bool:
    return field in entry.input_schema.get("properties", {})


def renamed(error: InvalidRequest, names: dict[str, str]) -> InvalidRequest:
    """``error`` with the prediction input's field names (``input.max_tokens``) put
    back as the face's request calls them (``names``: ours -> theirs)."""
    message = error.message
    for ours in sorted(names, key=len, reverse=True):
        for end in (".", ":"):
            message = message.replace(ours + end, names[ours] + end)
    return InvalidRequest(message, error.details)


async def run(
    services: Services,
    principal: Principal,
    model: str,
    input: dict[str, Any],
    names: dict[str, str],
) -> Job:
    """Run the prediction and wait for it (``llm_wait_seconds``, then 504); the job,
    which succeeded (a failure is raised as the matching error). Validation errors
    name the fields as ``names`` maps them."""
    try:
        job = await services.predictions.run(
            principal.account_id,
            principal.user_id,
            principal.key_id,
            SubmitRequest(model=model, input=input),
            limit_seconds=services.settings.llm_wait_seconds,
        )
    except InvalidRequest as exc:
        raise renamed(exc, names) from None
    if job.status is not JobStatus.SUCCEEDED:
        raise job_failure(job)
    return job


async def start(
    services: Services,
    principal: Principal,
    model: str,
    input: dict[str, Any],
    names: dict[str, str],
) -> Job:
    """Submit the prediction (for a stream to follow); validation errors, a missing
    balance (402) or the pending cap (429) are raised before anything is streamed."""
    try:
        submitted = await services.predictions.submit(
            principal.account_id,
            principal.user_id,
            principal.key_id,
            SubmitRequest(model=model, input=input),
        )
    except InvalidRequest as exc:
        raise renamed(exc, names) from None
    return submitted.job


def job_failure(job: Job) -> GenyardError:
    """The error a face answers for a job that failed or was canceled."""
    message = job.error_message or f"the prediction {job.status.value}"
    details = {"prediction_id": job.id, "code": job.error_code}
    match job.error_code:
        case JobErrorCode.CANCELED:  # someone canceled it (DELETE /v1/predictions/{id})
            return Conflict(message, details)
        case JobErrorCode.INVALID_INPUT:
            return InvalidRequest(message, details)
        case JobErrorCode.PROVIDER_UNAVAILABLE:
            return ServiceUnavailable(message, details)
        case JobErrorCode.TIMEOUT | JobErrorCode.QUEUE_TIMEOUT:
            return GatewayTimeout(message, details)
        case _:
            return InternalError(message, details)


def tokens(job: Job) -> tuple[int, int]:
    """(input tokens, output tokens) as the engine counted them."""
    usage = job.usage or {}
    return int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))


def output_text(job: Job) -> tuple[str, str]:
    """(text, finish_reason ``stop`` or ``length``) of a chat model's output."""
    output = job.output if isinstance(job.output, dict) else {}
    return str(output.get("text", "")), str(output.get("finish_reason", "stop"))
