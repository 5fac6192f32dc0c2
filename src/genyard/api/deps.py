"""Shared dependencies of the faces: services, the caller, scopes, JSON bodies."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError

from genyard.api.middleware import route_template
from genyard.domain.accounts import Principal, Scope
from genyard.domain.ratelimits import POLLING_ROUTES
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
    """The key, from whichever place the caller's client puts it: ``X-API-Key`` (native,
    Anthropic), ``Authorization: Bearer`` (native, OpenAI), ``x-goog-api-key`` or the
    ``key`` query parameter (Gemini)."""
    for header in ("x-api-key", "x-goog-api-key"):
        key = request.headers.get(header)
        if key and key.strip():
            return key.strip()
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = request.query_params.get("key")
    return key.strip() if key and key.strip() else None


async def get_principal(request: Request, services: ServicesDep) -> Principal:
    """The caller, authenticated and counted against its rate limits (a call without a
    valid key is counted per client IP, and answers 429 instead of 401 past it)."""
    key = api_key_from(request)
    try:
        if key is None:
            raise Unauthorized(
                "missing API key: send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'"
            )
        principal = await services.accounts.authenticate(key)
    except Unauthorized:
        await count_request(request, services, None)
        raise
    request.state.principal = principal
    await count_request(request, services, principal)
    return principal


def client_ip(request: Request) -> str:
    """The peer's address (uvicorn puts X-Forwarded-For's there for trusted proxies)."""
    return request.client.host if request.client else "unknown"


async def count_request(request: Request, services: Services, principal: Principal | None) -> None:
    """The one place requests are rate limited. The decision is left on the request's
    state, where the middleware turns it into ``X-RateLimit-*`` headers on the response,
    whatever it is (errors too); past a limit this raises the 429."""
    polling = (
        principal is not None
        and request.method in ("GET", "HEAD")
        and route_template(request.scope) in POLLING_ROUTES
    )
    decision = await services.limiter.check(
        principal, client_ip=client_ip(request), polling=polling
    )
    if decision is None:
        return
    request.state.rate_limit = decision
    if not decision.allowed:
        raise decision.error()


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
