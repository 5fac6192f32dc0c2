"""Errors of the simple ``/api`` face: ``{"error": "message"}`` with the seed's statuses.

Every error under ``/api`` (a :class:`GenyardError`, a malformed body, an unknown route,
a body over the size cap, an unexpected exception) is rendered by :func:`render_error`.
A prediction that ends badly becomes an error here too (:func:`job_failure`): the
statuses follow the seed's table (400 input, 429 limits, 500/502 server and model
failures, 504 time limits), plus 503 for a route whose model cannot run here.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from genyard.api.errors import error_headers
from genyard.api.responses import JSON
from genyard.domain.jobs import Job, JobStatus
from genyard.errors import GenyardError, JobErrorCode

#: The header that names the prediction behind an answer (success or error), so its
#: history, usage and logs can be found with ``GET /v1/predictions/{id}``.
PREDICTION_HEADER = "X-Prediction-Id"


def render_error(error: GenyardError) -> Response:
    headers = error_headers(error)
    if isinstance(error, SimpleError) and not error.retryable:
        headers["x-should-retry"] = "false"
    prediction_id = error.details.get("prediction_id")
    if isinstance(prediction_id, str):
        headers[PREDICTION_HEADER] = prediction_id
    return JSON({"error": error.message}, status_code=error.status, headers=headers)


class SimpleError(GenyardError):
    """An error with the status this face gives it (a failed prediction, a model that
    cannot run here)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        retryable: bool = True,
    ) -> None:
        super().__init__(message, details)
        self.status = status
        self.code = code
        self.retryable = retryable


def model_unavailable(model_id: str, reason: str | None, fix: str | None) -> SimpleError:
    """503: the route's model has no provider here; retrying does not help until an
    operator configures one (``x-should-retry: false``)."""
    message = f"{model_id} is unavailable here: {reason or 'no provider serves it'}"
    if fix:
        message += f"; to enable it: {fix}"
    return SimpleError(
        503,
        "model_unavailable",
        message,
        {"model": model_id, "reason": reason, "fix": fix},
        retryable=False,
    )


#: A failed prediction's error code -> (status, retryable).
_FAILURE_STATUS: dict[str, tuple[int, bool]] = {
    JobErrorCode.INVALID_INPUT: (400, False),
    JobErrorCode.TIMEOUT: (504, False),
    JobErrorCode.QUEUE_TIMEOUT: (504, False),
    JobErrorCode.PROVIDER_ERROR: (502, True),
    JobErrorCode.PROVIDER_UNAVAILABLE: (503, False),
    JobErrorCode.WORKER_LOST: (500, True),
    JobErrorCode.CANCELED: (500, False),
    JobErrorCode.INTERNAL: (500, True),
}


def job_failure(job: Job) -> SimpleError:
    """The error for a prediction that ended without succeeding."""
    code = job.error_code or JobErrorCode.INTERNAL
    status, retryable = _FAILURE_STATUS.get(code, (500, True))
    if job.status is JobStatus.CANCELED and code == JobErrorCode.CANCELED:
        message = f"the prediction was canceled: {job.error_message or 'canceled'}"
    else:
        message = job.error_message or f"the prediction {job.status.value}"
    return SimpleError(
        status, code, message, {"prediction_id": job.id, "code": code}, retryable=retryable
    )
