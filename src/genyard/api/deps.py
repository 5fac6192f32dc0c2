"""Shared dependencies of the faces: services, the caller, scopes, JSON bodies."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError

from genyard.domain.accounts import Principal, Scope
from genyard.domain.validation import FieldError
from genyard.errors import (
    Forbidden,
    InvalidRequest,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from genyard.services.container import Services

M = TypeVar("M", bound=BaseModel)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def api_key_from(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None


async def get_principal(request: Request, services: ServicesDep) -> Principal:
    key = api_key_from(request)
    if key is None:
        raise Unauthorized(
            "missing API key: send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'"
        )
    principal = await services.accounts.authenticate(key)
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(scope: Scope) -> Any:
    """A dependency that passes the caller through when its key has ``scope``."""

    async def check(principal: PrincipalDep) -> Principal:
        if not principal.has(scope):
            raise Forbidden(
                f"this API key lacks the '{scope.value}' scope",
                {"required_scope": scope.value},
            )
        return principal

    return Depends(check)


async def read_json(request: Request, max_bytes: int) -> Any:
    """The request body as JSON, with a clear error for each way it can be wrong."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(
            f"Content-Type must be application/json, got {content_type or 'none'!r}",
            {"content_type": content_type},
        )
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"request body exceeds {max_bytes} bytes", {"limit": max_bytes})
    if not body:
        raise InvalidRequest("request body is empty; send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"malformed JSON: {exc}", {"position": exc.pos}) from None


def parse_model(model: type[M], data: Any) -> M:
    """Validate a JSON value into ``model``; every bad field named in one 400."""
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            FieldError(".".join(str(p) for p in e["loc"]) or "body", e["msg"]) for e in exc.errors()
        ]
        message = "; ".join(f"{e.field}: {e.message}" for e in errors)
        raise InvalidRequest(message, {"errors": [e.as_dict() for e in errors]}) from None


async def json_body(request: Request, model: type[M]) -> M:
    services = get_services(request)
    return parse_model(model, await read_json(request, services.settings.max_body_bytes))
