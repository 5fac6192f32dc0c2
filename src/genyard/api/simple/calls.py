"""One simple-face call = one prediction: the model's availability (503 here, as the
seed's face words it), the run with the route's execution limit, and the answer (JSON
or the output file's bytes). The run, the failure mapping and the file reading are
those every face shares (:mod:`genyard.api.face_calls`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from starlette.responses import Response

from genyard.api import face_calls
from genyard.api.deps import require
from genyard.api.responses import JSON
from genyard.api.simple.errors import PREDICTION_HEADER, model_unavailable
from genyard.config import Settings
from genyard.domain.accounts import Principal, Scope
from genyard.domain.catalog import ModelEntry
from genyard.domain.files import UploadedFile
from genyard.domain.jobs import Job
from genyard.domain.validation import validate_input
from genyard.services.container import Services
from genyard.services.predictions import invalid

#: The seed's execution limits (seconds); the other routes use
#: ``GENYARD_SIMPLE_API_WAIT_SECONDS``, which also caps these.
SEED_LIMITS: dict[str, float] = {"tts": 58.0, "voice-clone": 60.0, "image2text": 115.0}
#: The caller of a route that runs a model.
GenerateDep = Annotated[Principal, require(Scope.GENERATE)]


def limit_seconds(settings: Settings, route: str) -> float:
    wait = settings.simple_api_wait_seconds
    seed = SEED_LIMITS.get(route)
    return wait if seed is None else min(seed, wait)


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
            raise face_calls.renamed(invalid(errors), rename)
    model(services, model_id)


def default_or(
    services: Services, model_type: str, model_id: str, input: dict[str, Any]
) -> ModelEntry:
    """The catalog's default ``model_type`` model (``model_id`` when it names none),
    for a route whose model may be unavailable (:func:`check_then_unavailable`)."""
    default = services.catalog.default_for(model_type)
    if default is not None:
        model_id = default.id
    check_then_unavailable(services, model_id, input, {})
    return model(services, model_id)


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
    return await face_calls.run(
        services,
        principal,
        entry.id,
        input,
        names=rename,
        uploads=uploads,
        limit_seconds=limit_seconds(services.settings, route),
    )


def json_answer(job: Job, body: Any) -> JSON:
    return JSON(body, headers={PREDICTION_HEADER: job.id})


async def file_answer(
    services: Services, job: Job, field: str, *, index: int | None = None
) -> Response:
    """The bytes of the job's output file ``field`` (item ``index`` of a list), with
    their stored content type (502 when there is none that can be read)."""
    file = await face_calls.output_file(services, job, field, index=index)
    return Response(
        content=file.data,
        media_type=file.content_type,
        headers={
            PREDICTION_HEADER: job.id,
            "Content-Disposition": f'inline; filename="{file.filename}"',
            "X-Content-Type-Options": "nosniff",
        },
    )
