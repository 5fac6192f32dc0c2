"""One simple-face call = one prediction: the model's availability, the run with the
route's execution limit, the failure mapping, and the answer (JSON or the output file's
bytes, read from the blob store)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from starlette.responses import Response

from genyard.api.deps import require
from genyard.api.responses import JSON
from genyard.api.simple.errors import (
    PREDICTION_HEADER,
    SimpleError,
    job_failure,
    model_unavailable,
)
from genyard.config import Settings
from genyard.domain.accounts import Principal, Scope
from genyard.domain.catalog import ModelEntry
from genyard.domain.files import UploadedFile
from genyard.domain.jobs import Job, JobStatus
from genyard.domain.validation import FieldError, validate_input
from genyard.errors import InvalidRequest
from genyard.services.container import Services
from genyard.services.predictions import SubmitRequest
from genyard.storage.base import BlobNotFound
from genyard.storage.keys import InvalidKey

#: The seed's execution limits (seconds); the other routes use
#: ``GENYARD_SIMPLE_API_WAIT_SECONDS``, which also caps these.
SEED_LIMITS: dict[str, float] = {"tts": 58.0, "voice-clone": 60.0, "image2text": 115.0}
#: The caller of a route that runs a model.
GenerateDep = Annotated[Principal, require(Scope.GENERATE)]
_FIELD = re.compile(r"^(?:input\.|file:)?([A-Za-z_][A-Za-z0-9_]*)(.*)$", re.S)


def limit_seconds(settings: Settings, route: str) -> float:
    wait = settings.simple_api_wait_seconds
    seed = SEED_LIMITS.get(route)
    return wait if seed is None else min(seed, wait)


def _face_field(field: str, rename: Mapping[str, str]) -> str:
    """A model field path (``input.documents[2]``, ``file:audio``) in the face's terms."""
    match = _FIELD.match(field)
    if match is None:
        return field
    name, rest = match.groups()
    return rename.get(name, name) + rest


def field_errors(errors: Iterable[FieldError], rename: Mapping[str, str]) -> InvalidRequest:
    renamed = [FieldError(_face_field(e.field, rename), e.message) for e in errors]
    message = "; ".join(f"{e.field}: {e.message}" for e in renamed)
    return InvalidRequest(message, {"errors": [e.as_dict() for e in renamed]})


def _renamed(error: InvalidRequest, rename: Mapping[str, str]) -> InvalidRequest:
    errors = error.details.get("errors")
    if not isinstance(errors, list) or not errors:
        return error
    return field_errors(
        (FieldError(str(e.get("field", "")), str(e.get("message", ""))) for e in errors),
        rename,
    )


def model(services: Services, model_id: str) -> ModelEntry:
    """The route's model when it can run here; else 503 with the catalog's reason."""
    entry = services.catalog.get(model_id)
    if entry is None:
        raise model_unavailable(model_id, "it is not in this server's catalog", None)
    availability = services.providers.availability(entry.provider, entry)
    if not availability.available:
        raise model_unavailable(entry.id, availability.reason, availability.fix)
    return entry


def default_model(services: Services, model_type: str, language: str | None = None) -> ModelEntry:
    """The catalog's default model of a type (for a language), when it can run here."""
    entry = services.catalog.default_for(model_type, language)
    if entry is None:
        raise model_unavailable(
            f"the default {model_type} model",
            f"the catalog names no default {model_type} model",
            f"name one under [{model_type}] in the catalog's defaults.toml",
        )
    return model(services, entry.id)


def check_then_unavailable(
    services: Services, model_id: str, input: dict[str, Any], rename: Mapping[str, str]
) -> None:
    """For a route whose model may be unavailable: a bad request is still a 400 (checked
    against the catalog's input schema), a good one meets the 503."""
    entry = services.catalog.get(model_id)
    if entry is not None:
        _, errors = validate_input(entry.input_schema, input)
        if errors:
            raise field_errors(errors, rename)
    model(services, model_id)


async def predict(
    services: Services,
    principal: Principal,
    entry: ModelEntry,
    input: dict[str, Any],
    *,
    route: str,
    uploads: Iterable[UploadedFile] = (),
    rename: Mapping[str, str] | None = None,
) -> Job:
    """Run a prediction within the route's limit (504 past it: the job is canceled and
    its hold released); the succeeded job, or the error its failure maps to."""
    req = SubmitRequest(model=entry.id, input=input, uploads=list(uploads))
    try:
        job = await services.predictions.run(
            principal.account_id,
            principal.user_id,
            principal.key_id,
            req,
            limit_seconds=limit_seconds(services.settings, route),
        )
    except InvalidRequest as exc:
        raise _renamed(exc, rename or {}) from None
    if job.status is not JobStatus.SUCCEEDED:
        raise job_failure(job)
    return job


def json_answer(job: Job, body: Any) -> JSON:
    return JSON(body, headers={PREDICTION_HEADER: job.id})


async def file_answer(
    services: Services, job: Job, field: str, *, index: int | None = None
) -> Response:
    """The bytes of the job's output file ``field`` (item ``index`` of a list), read
    from the blob store (never over HTTP), with their stored content type."""
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
        raise SimpleError(
            502,
            "provider_error",
            f"the model's output has no readable {field} file ({exc})",
            {"prediction_id": job.id},
        ) from None
    filename = own.key.rsplit("/", 1)[-1]
    return Response(
        content=data,
        media_type=stored.content_type,
        headers={
            PREDICTION_HEADER: job.id,
            "Content-Disposition": f'inline; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
        },
    )
