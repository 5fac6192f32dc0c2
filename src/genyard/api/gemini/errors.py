"""Errors in Google's shape: ``{"error": {"code": <HTTP status>, "message", "status"}}``,
``status`` the canonical name for the HTTP status. The ``google-genai`` SDK raises
``errors.ClientError`` for a 4xx and ``errors.ServerError`` for a 5xx, with ``.code``
and ``.status`` from this body.

Two choices differ from Google's own service (docs/faces/gemini.md): a missing or wrong
API key is 401 ``UNAUTHENTICATED`` (Google answers a bad key 400 ``INVALID_ARGUMENT``
"API key not valid"; genyard's faces all answer 401 for it), and an account without
the credits a call may cost is HTTP 402 with status ``FAILED_PRECONDITION`` (Google's
status for billing that is not set up; Google itself has no 402).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from genyard.api.errors import error_headers
from genyard.api.responses import JSON
from genyard.errors import GenyardError

PREFIX = "/llm/gemini/"

#: Google's canonical status for each HTTP status genyard answers.
STATUSES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    402: "FAILED_PRECONDITION",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    415: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def status_name(status: int) -> str:
    return STATUSES.get(status, "INVALID_ARGUMENT" if status < 500 else "INTERNAL")


def error_object(error: GenyardError) -> dict[str, Any]:
    """The body, also sent as a stream's last chunk when the job fails mid-stream."""
    return {
        "error": {
            "code": error.status,
            "message": error.message,
            "status": status_name(error.status),
        }
    }


def render_error(error: GenyardError) -> Response:
    return JSON(error_object(error), status_code=error.status, headers=error_headers(error))
