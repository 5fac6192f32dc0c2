"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

The status codes are those the official SDK turns into its own exceptions (400
BadRequestError, 401 AuthenticationError, 403 PermissionDeniedError, 404 NotFoundError,
409 ConflictError, 429 RateLimitError, 5xx InternalServerError; 402 has no class of its
own: the SDK raises its base ``APIStatusError`` with ``status_code`` 402).
``param`` names the request field at fault, in OpenAI's names (``input``, not the
model's ``text``: :func:`genyard.api.face_calls.renamed`). A failed job's error
(:func:`genyard.api.face_calls.job_failure`: 400, 409, 500, 502, 503 or 504) has the
job's error code as ``code``. Every error carries :func:`~genyard.api.errors.error_headers`
(``Retry-After`` on a 429, ``x-should-retry``); a failed job's error says
``x-should-retry: false`` whatever its status (the prediction ran and its id is in the
message: a retry would run it again).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from genyard.api.errors import error_headers
from genyard.api.responses import JSON
from genyard.errors import GenyardError, InvalidRequest, NotFound

PREFIX = "/llm/openai/v1"

#: OpenAI's ``type`` for each status (the rest: ``server_error``).
_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    402: "insufficient_quota",
    403: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "requests",
}

#: OpenAI's ``code`` by genyard's error code, where OpenAI has one.
_CODES = {
    "unauthorized": "invalid_api_key",
    "insufficient_credits": "insufficient_quota",
    "forbidden": "insufficient_permissions",
    "rate_limit_exceeded": "rate_limit_exceeded",
    "payload_too_large": "request_too_large",
    "timeout": "timeout",
    "method_not_allowed": "method_not_allowed",
}


def model_not_found(model: str) -> NotFound:
    return NotFound(
        f"The model `{model}` does not exist or you do not have access to it.",
        {"field": "model", "openai_code": "model_not_found"},
    )


def bad_param(param: str, message: str) -> InvalidRequest:
    """A 400 naming ``param`` (in OpenAI's names)."""
    return InvalidRequest(f"{param}: {message}", {"field": param})


def _param(error: GenyardError) -> str | None:
    details = error.details
    if isinstance(details.get("field"), str):
        return str(details["field"])
    errors = details.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        field = errors[0].get("field")
        return str(field) if field else None
    return None


def _message(error: GenyardError) -> str:
    if error.status == 404 and error.message == "Not Found":
        return f"Invalid URL: no such route under {PREFIX}"
    prediction_id = error.details.get("prediction_id")
    job_code = error.details.get("job_code")
    if job_code is not None:  # a failed job (face_calls.job_failure)
        status = error.details.get("job_status", "failed")
        return f"prediction {prediction_id} {status} ({job_code}): {error.message}"
    if isinstance(prediction_id, str) and prediction_id not in error.message:
        return f"{error.message} (prediction {prediction_id})"
    return error.message


def error_object(error: GenyardError) -> dict[str, Any]:
    """``{"error": {"message", "type", "param", "code"}}`` for ``error``."""
    status = error.status
    code = (
        error.details.get("job_code")
        or error.details.get("openai_code")
        or _CODES.get(error.code, error.code if status < 500 else None)
    )
    return {
        "error": {
            "message": _message(error),
            "type": _TYPES.get(status, "server_error"),
            "param": _param(error) if status in (400, 404) else None,
            "code": code,
        }
    }


def render_error(error: GenyardError) -> Response:
    """The renderer for every error under ``/llm/openai/v1``."""
    body = error_object(error)
    status = error.status
    headers = error_headers(error)
    if "job_code" in error.details:  # the prediction ran: a retry would run it again
        headers["x-should-retry"] = "false"
    prediction_id = error.details.get("prediction_id")
    if isinstance(prediction_id, str):
        headers["x-genyard-prediction-id"] = prediction_id
    return JSON(body, status_code=status, headers=headers)
