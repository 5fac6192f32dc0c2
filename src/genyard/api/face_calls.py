"""The one way in for every face that runs a model call (OpenAI, Anthropic, Gemini,
the simple ``/api`` face): each face is a thin adapter over the same engine.

Here: picking a model of the right kind (:func:`model_for`), running a call as a
prediction within a limit (:func:`run`; ``Settings.llm_wait_seconds`` unless the face
gives its own: past it :meth:`PredictionService.run` cancels the job, releases its
hold and raises a 504) or submitting one for a stream to follow (:func:`start`),
validation errors put back in the face's field names (:func:`renamed`), a job that
failed or was canceled turned into one error by one table (:func:`job_failure`),
token counts (:func:`tokens`) and output files read back from the blob store
(:func:`output_file`). Each face keeps its request and response mapping and renders
the errors raised here in its own shape.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from genyard.domain.accounts import Principal
from genyard.domain.catalog import ModelEntry
from genyard.domain.files import UploadedFile
from genyard.domain.jobs import Job, JobStatus
from genyard.errors import (
    BadGateway,
    Conflict,
    GatewayTimeout,
    GenyardError,
    InternalError,
    InvalidRequest,
    JobErrorCode,
    NotFound,
    ServiceUnavailable,
)
from genyard.services.container import Services
from genyard.services.predictions import SubmitRequest
from genyard.storage.base import BlobNotFound
from genyard.storage.keys import InvalidKey

#: A failed or canceled job's error code -> the error every face answers (else 500).
FAILURES: dict[str, type[GenyardError]] = {
    JobErrorCode.CANCELED: Conflict,  # someone canceled it (DELETE /v1/predictions/{id})
    JobErrorCode.INVALID_INPUT: InvalidRequest,
    JobErrorCode.PROVIDER_UNAVAILABLE: ServiceUnavailable,
    JobErrorCode.TIMEOUT: GatewayTimeout,
    JobErrorCode.QUEUE_TIMEOUT: GatewayTimeout,
    JobErrorCode.PROVIDER_ERROR: BadGateway,
}
_FIELD = re.compile(r"^(?:input\.|file:)?([A-Za-z_][A-Za-z0-9_]*)(.*)$", re.S)


def is_chat(entry: ModelEntry) -> bool:
    return entry.type == "text" and "chat" in entry.capabilities.get("modes", ())


def _unknown(model_id: str) -> GenyardError:
    return NotFound(f"model {model_id!r} not found; list the models to see which exist")


def _wrong_kind(entry: ModelEntry, kind: str) -> GenyardError:
    wanted = "a chat model (type text, mode chat)" if kind == "chat" else f"a {kind} model"
    return InvalidRequest(
        f"model: {entry.id} is a {entry.type} model "
        f"(modes: {', '.join(entry.capabilities.get('modes', ())) or 'none'}); "
        f"this endpoint needs {wanted}",
        {"field": "model"},
    )


def model_for(
    services: Services,
    model_id: str,
    kind: str | None = None,
    *,
    unknown: Callable[[str], GenyardError] = _unknown,
    wrong_kind: Callable[[ModelEntry, str], GenyardError] = _wrong_kind,
) -> ModelEntry:
    """The model to run: 404 (``unknown``) when the catalog has no such model, 400
    (``wrong_kind``) when it is not of ``kind`` (``chat``: a text model with the chat
    mode; else a model type; None: any), 400 naming ``model`` when it cannot run here."""
    entry = services.catalog.get(model_id)
    if entry is None:
        raise unknown(model_id)
    if kind is not None and not (is_chat(entry) if kind == "chat" else entry.type == kind):
        raise wrong_kind(entry, kind)
    return services.predictions.available_model(entry.id)


def _face_field(field: str, names: Mapping[str, str]) -> str:
    """A model field path (``input.documents[2]``, ``file:audio``) in the face's names."""
    match = _FIELD.match(field)
    if match is None:
        return field
    name, rest = match.groups()
    return names.get(name, name) + rest


def renamed(error: InvalidRequest, names: Mapping[str, str]) -> InvalidRequest:
    """``error`` with each field of its ``errors`` (``input.text[1]``) as the face's
    request calls it (``names``: the model's field -> the face's, ``{"text": "input"}``
    gives ``input[1]``; another field loses its ``input.``)."""
    errors = error.details.get("errors")
    if not isinstance(errors, list) or not errors:
        return error
    fields = [
        {**e, "field": _face_field(str(e.get("field", "")), names)}
        for e in errors
        if isinstance(e, dict)
    ]
    message = "; ".join(f"{e['field']}: {e.get('message', '')}" for e in fields)
    return InvalidRequest(message, {**error.details, "errors": fields})


@contextmanager
def _named(names: Mapping[str, str] | None) -> Iterator[None]:
    try:
        yield
    except InvalidRequest as exc:
        raise renamed(exc, names or {}) from None


async def run(
    services: Services,
    principal: Principal,
    model: str,
    input: dict[str, Any],
    *,
    names: Mapping[str, str] | None = None,
    uploads: Iterable[UploadedFile] = (),
    limit_seconds: float | None = None,
) -> Job:
    """Run the prediction and wait for it (``limit_seconds``, by default
    ``llm_wait_seconds``; then 504); the job, which succeeded (a failure is raised as
    :func:`job_failure`). Validation errors name the fields as ``names`` maps them."""
    req = SubmitRequest(model=model, input=input, uploads=list(uploads))
    if limit_seconds is None:
        limit_seconds = services.settings.llm_wait_seconds
    caller = (principal.account_id, principal.user_id, principal.key_id)
    with _named(names):
        job = await services.predictions.run(*caller, req, limit_seconds=limit_seconds)
    if job.status is not JobStatus.SUCCEEDED:
        raise job_failure(job)
    return job


async def start(
    services: Services,
    principal: Principal,
    model: str,
    input: dict[str, Any],
    *,
    names: Mapping[str, str] | None = None,
) -> Job:
    """Submit the prediction (for a stream to follow); validation errors, a missing
    balance (402) or the pending cap (429) are raised before anything is streamed."""
    req = SubmitRequest(model=model, input=input)
    caller = (principal.account_id, principal.user_id, principal.key_id)
    with _named(names):
        submitted = await services.predictions.submit(*caller, req)
    return submitted.job


def job_failure(job: Job) -> GenyardError:
    """The error for a job that failed or was canceled (:data:`FAILURES`); its details
    name the ``prediction_id``, the ``job_code`` and the ``job_status``."""
    code = job.error_code or JobErrorCode.INTERNAL
    kind = FAILURES.get(code, InternalError)
    return kind(
        job.error_message or f"the prediction {job.status.value}",
        {"prediction_id": job.id, "job_code": code, "job_status": job.status.value},
    )


def tokens(job: Job) -> tuple[int, int]:
    """(input tokens, output tokens) as the engine counted them."""
    usage = job.usage or {}
    return int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)


def output_text(job: Job) -> tuple[str, str]:
    """(text, finish_reason ``stop`` or ``length``) of a text model's output."""
    output = job.output if isinstance(job.output, dict) else {}
    return str(output.get("text", "")), str(output.get("finish_reason") or "stop")


@dataclass(frozen=True, slots=True)
class OutputFile:
    data: bytes
    content_type: str
    filename: str


async def output_file(
    services: Services, job: Job, field: str, *, index: int | None = None
) -> OutputFile:
    """The job's output file ``field`` (item ``index`` of a list), read from the blob
    store (never over HTTP); 502 when the output names no file that can be read."""
    output = job.output if isinstance(job.output, dict) else {}
    url = output.get(field)
    if index is not None:
        url = url[index] if isinstance(url, list) and len(url) > index else None
    try:
        own = services.files.links.parse(url) if isinstance(url, str) else None
        if own is None:
            raise InvalidKey(f"not a stored file: {url!r}")
        data, stored = await services.files.blobs.get(own.key)
    except (InvalidKey, BlobNotFound) as exc:
        raise BadGateway(
            f"the model's output has no readable {field} file ({exc})", {"prediction_id": job.id}
        ) from None
    return OutputFile(data, stored.content_type, own.key.rsplit("/", 1)[-1])


def sampled(
    entry: ModelEntry, given: Mapping[str, Any], refuse: Callable[[str], GenyardError]
) -> dict[str, Any]:
    """The sampling fields the request gives (None: left out, so the model's catalog
    default applies); one the model's input schema lacks raises ``refuse(name)``."""
    props = entry.input_schema.get("properties", {})
    taken: dict[str, Any] = {}
    for name, value in given.items():
        if value is None:
            continue
        if name not in props:
            raise refuse(name)
        taken[name] = value
    return taken


def chat_messages(system: str | None, turns: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    """A chat input's ``messages``: the system text first (when not empty), then the
    (role, text) turns."""
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": role, "content": text} for role, text in turns]
    return messages
