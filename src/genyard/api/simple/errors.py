"""Errors of the simple ``/api`` face: ``{"error": "message"}`` with the seed's statuses.

Every error under ``/api`` (a :class:`GenyardError`, a malformed body, an unknown route,
a body over the size cap, an unexpected exception) is rendered by :func:`render_error`.
A prediction that ends badly becomes an error by the table every face shares
(:func:`genyard.api.face_calls.job_failure`), which follows the seed's (400 input, 429
limits, 500/502 server and model failures, 504 time limits), plus 409 for a prediction
canceled meanwhile and 503 for a route whose model cannot run here.
"""

from __future__ import annotations

from starlette.responses import Response

from genyard.api.errors import error_headers
from genyard.api.responses import JSON
from genyard.errors import GenyardError, JobErrorCode, ServiceUnavailable

#: The header that names the prediction behind an answer (success or error), so its
#: history, usage and logs can be found with ``GET /v1/predictions/{id}``.
PREDICTION_HEADER = "X-Prediction-Id"


def _message(error: GenyardError) -> str:
    if error.details.get("job_code") == JobErrorCode.CANCELED:
        return f"the prediction was canceled: {error.message}"
    return error.message


def render_error(error: GenyardError) -> Response:
    headers = error_headers(error)
    if error.status == 503:  # no provider here: a retry does not help until one is set up
        headers["x-should-retry"] = "false"
    prediction_id = error.details.get("prediction_id")
    if isinstance(prediction_id, str):
        headers[PREDICTION_HEADER] = prediction_id
    return JSON({"error": _message(error)}, status_code=error.status, headers=headers)


def model_unavailable(model_id: str, reason: str | None, fix: str | None) -> ServiceUnavailable:
    """503: the route's model has no provider here; retrying does not help until an
    operator configures one (``x-should-retry: false``)."""
    message = f"{model_id} is unavailable here: {reason or 'no provider serves it'}"
    if fix:
        message += f"; to enable it: {fix}"
    return ServiceUnavailable(message, {"model": model_id, "reason": reason, "fix": fix})
