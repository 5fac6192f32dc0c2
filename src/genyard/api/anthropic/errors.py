"""Errors in Anthropic's shape: ``{"type": "error", "error": {"type", "message"},
"request_id"}``, with the statuses the ``anthropic`` SDK maps to its exception classes
(400 BadRequestError, 401 AuthenticationError, 402 PaymentRequiredError, 403
PermissionDeniedError, 404 NotFoundError, 409 ConflictError, 413 ContentTooLargeError, 429
RateLimitError, 500 and 502 InternalServerError, 503 ServiceUnavailableError, 504
GatewayTimeoutError)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from genyard.api.errors import error_headers
from genyard.api.responses import JSON
from genyard.errors import GenyardError
from genyard.logs import request_id_var

PREFIX = "/llm/anthropic/"

#: Anthropic's error ``type`` for each status genyard answers.
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
}


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")


def error_object(error: GenyardError) -> dict[str, Any]:
    """The body, also sent as a stream's ``error`` event."""
    body: dict[str, Any] = {
        "type": "error",
        "error": {"type": error_type(error.status), "message": error.message},
    }
    request_id = request_id_var.get()
    if request_id:
        body["request_id"] = request_id
    return body


def render_error(error: GenyardError) -> Response:
    headers = error_headers(error)
    request_id = request_id_var.get()
    if request_id:
        headers["request-id"] = request_id
    return JSON(error_object(error), status_code=error.status, headers=headers)
