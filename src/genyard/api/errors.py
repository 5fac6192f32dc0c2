"""Error rendering: one format per face, chosen by the request's path.

The native face's envelope is ``{"error": {"code", "message", "details"}}``. Another
face (OpenAI, Anthropic, Gemini, the simple ``/api`` face, the tasks face) registers
its own :data:`Renderer` for its path prefix with :meth:`ErrorFormats.add`; every
error under that prefix (a :class:`GenyardError`, a request that fails validation, an
unknown route, a body over the size cap, an unexpected exception) is rendered by it.
Unexpected errors end in the request middleware (api/middleware.py), which logs them
and answers 500 ``internal_error`` without a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from genyard.api.responses import JSON
from genyard.errors import (
    Conflict,
    Forbidden,
    GenyardError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    UnsupportedMediaType,
)

log = logging.getLogger(__name__)

#: Renders an error the way one face's clients expect it.
Renderer = Callable[[GenyardError], Response]

_HTTP_ERRORS: dict[int, type[GenyardError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    429: RateLimited,
}


class MethodNotAllowed(GenyardError):
    code = "method_not_allowed"
    status = 405


#: Statuses a client may retry (the OpenAI and Anthropic SDKs retry 408, 409, 429 and
#: 5xx unless the response says ``x-should-retry: false``).
_RETRYABLE = frozenset({408, 429, 500, 502, 503})


def error_headers(error: GenyardError) -> dict[str, str]:
    """Headers every face sends with an error: ``Retry-After`` on a 429, and
    ``x-should-retry: false`` on errors a retry cannot mend (a 409, a 504 whose job
    was canceled, every other 4xx)."""
    headers: dict[str, str] = {}
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    headers["x-should-retry"] = "true" if error.status in _RETRYABLE else "false"
    return headers


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def render_native(error: GenyardError) -> Response:
    return JSON(
        error_body(error.code, error.message, error.details),
        status_code=error.status,
        headers=error_headers(error),
    )


class ErrorFormats:
    """The renderer for each path prefix; the native one for every other path."""

    def __init__(self, default: Renderer = render_native) -> None:
        self.default = default
        self._faces: list[tuple[str, Renderer]] = []

    def add(self, prefix: str, renderer: Renderer) -> None:
        self._faces.append((prefix, renderer))
        self._faces.sort(key=lambda face: len(face[0]), reverse=True)  # longest first

    def for_path(self, path: str) -> Renderer:
        for prefix, renderer in self._faces:
            if path.startswith(prefix):
                return renderer
        return self.default


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_error(exc: RequestValidationError) -> InvalidRequest:
    errors = [{"field": _field(tuple(e["loc"])), "message": e["msg"]} for e in exc.errors()]
    message = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return InvalidRequest(message, {"errors": errors})


def http_error(exc: StarletteHTTPException) -> GenyardError:
    kind = _HTTP_ERRORS.get(exc.status_code)
    if exc.status_code == 405:
        kind = MethodNotAllowed
    if kind is None:
        error = GenyardError(str(exc.detail) if exc.detail else "internal error")
        error.status = exc.status_code
        return error
    return kind(str(exc.detail) if exc.detail else kind.code.replace("_", " "))


def install_error_handlers(app: FastAPI, formats: ErrorFormats) -> None:
    app.state.error_formats = formats

    def render(request: Request, error: GenyardError) -> Response:
        return formats.for_path(request.url.path)(error)

    @app.exception_handler(GenyardError)
    async def _genyard(request: Request, exc: GenyardError) -> Response:
        return render(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return render(request, validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        response = render(request, http_error(exc))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response
