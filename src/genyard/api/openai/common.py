"""What every OpenAI route shares: the caller (with OpenAI's 401 and 403 messages),
models looked up as OpenAI words it (404 ``model_not_found`` for an unknown one) and
usage in OpenAI's names; the calls themselves go through :mod:`genyard.api.face_calls`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from genyard.api import face_calls
from genyard.api.deps import ServicesDep, api_key_from, get_principal
from genyard.api.openai.errors import PREFIX, model_not_found
from genyard.domain.accounts import Principal, Scope
from genyard.domain.catalog import ModelEntry
from genyard.domain.jobs import Job
from genyard.errors import Forbidden, InvalidRequest, Unauthorized
from genyard.services.container import Services

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


def wrong_type(entry: ModelEntry, route: str, wanted: str) -> InvalidRequest:
    return InvalidRequest(
        f"model: {entry.id} is a {entry.type} model, not {wanted}: "
        f"{route} serves {wanted} models (GET {PREFIX}/models lists them)",
        {"field": "model"},
    )


def find_model(
    services: Services, model_id: str, kind: str | None = None, route: str | None = None
) -> ModelEntry:
    """The catalog entry (404 ``model_not_found`` when unknown) of type ``kind`` (a 400
    naming ``model`` and ``route`` when it is another) whose provider can run here (400
    naming ``model`` with the reason when it cannot)."""
    return face_calls.model_for(
        services,
        model_id,
        kind,
        unknown=model_not_found,
        wrong_kind=lambda entry, kind: wrong_type(entry, route or f"this route ({kind})", kind),
    )


def token_usage(job: Job) -> dict[str, int]:
    """OpenAI's usage from the job's ``input_tokens`` and ``output_tokens``."""
    prompt, completion = face_calls.tokens(job)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
