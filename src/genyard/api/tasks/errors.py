"""The tasks face's errors, in Evolink's shape (the seed's platform; its task query
reference shows it): ``{"error": {"code", "message", "type", "param"}}``.

``code`` is a string (genyard's code, or a face code such as ``invalid_task_id`` and
``task_not_found``), ``type`` the category of the HTTP status, ``param`` the request
field at fault when there is one.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from genyard.api.errors import error_headers
from genyard.api.responses import JSON
from genyard.errors import GenyardError, InvalidRequest, NotFound

#: Evolink's error ``type`` per HTTP status.
TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "request_too_large_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "internal_server_error",
    502: "upstream_error",
    503: "service_unavailable_error",
    504: "timeout_error",
}
#: The key in ``details`` that carries a face-specific ``code``.
FACE_CODE = "tasks_code"


def _param(details: dict[str, Any]) -> str | None:
    for key in ("param", "field"):
        if isinstance(details.get(key), str):
            return str(details[key])
    errors = details.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        field = errors[0].get("field")
        return field if isinstance(field, str) else None
    return None


def error_body(error: GenyardError) -> dict[str, Any]:
    fallback = "internal_server_error" if error.status >= 500 else "invalid_request_error"
    body: dict[str, Any] = {
        "code": error.details.get(FACE_CODE, error.code),
        "message": error.message,
        "type": TYPES.get(error.status, fallback),
    }
    param = _param(error.details)
    if param is not None:
        body["param"] = param
    return {"error": body}


def render_error(error: GenyardError) -> Response:
    return JSON(error_body(error), status_code=error.status, headers=error_headers(error))


def invalid(field: str, message: str) -> InvalidRequest:
    """A 400 naming one request field."""
    return InvalidRequest(
        f"{field}: {message}", {"param": field, "errors": [{"field": field, "message": message}]}
    )


def invalid_task_id(task_id: str) -> InvalidRequest:
    return InvalidRequest(
        f"invalid task id {task_id!r}: task ids start with 'task-unified-'",
        {FACE_CODE: "invalid_task_id", "param": "task_id"},
    )


def task_not_found(task_id: str) -> NotFound:
    return NotFound(
        f"no task with id {task_id!r}", {FACE_CODE: "task_not_found", "param": "task_id"}
    )
