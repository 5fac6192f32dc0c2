"""The OpenAI face's error renderer walks every genyard error: OpenAI's body shape, the
status the SDK maps to its exception classes, and the retry headers."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from genyard.api.face_calls import job_failure, renamed
from genyard.api.openai.errors import bad_param, model_not_found, render_error
from genyard.domain.jobs import Job, JobStatus
from genyard.errors import (
    Conflict,
    Forbidden,
    GatewayTimeout,
    GenyardError,
    InsufficientCredits,
    InternalError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    UnsupportedMediaType,
)


def rendered(error: GenyardError) -> tuple[int, dict[str, Any], dict[str, str]]:
    response = render_error(error)
    body = orjson.loads(bytes(response.body))
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return response.status_code, body["error"], dict(response.headers)


@pytest.mark.parametrize(
    ("error", "status", "type_", "code", "retry"),
    [
        (InvalidRequest("bad"), 400, "invalid_request_error", "invalid_request", "false"),
        (Unauthorized("who"), 401, "invalid_request_error", "invalid_api_key", "false"),
        (InsufficientCredits("poor"), 402, "insufficient_quota", "insufficient_quota", "false"),
        (Forbidden("no"), 403, "invalid_request_error", "insufficient_permissions", "false"),
        (NotFound("Not Found"), 404, "invalid_request_error", "not_found", "false"),
        (Conflict("again"), 409, "invalid_request_error", "conflict", "false"),
        (PayloadTooLarge("big"), 413, "invalid_request_error", "request_too_large", "false"),
        (
            UnsupportedMediaType("xml"),
            415,
            "invalid_request_error",
            "unsupported_media_type",
            "false",
        ),
        (RateLimited("slow", retry_after=7), 429, "requests", "rate_limit_exceeded", "true"),
        (InternalError("oops"), 500, "server_error", None, "true"),
        (
            GatewayTimeout("late", {"prediction_id": "pred_1"}),
            504,
            "server_error",
            "timeout",
            "false",
        ),
    ],
)
def test_every_error_renders_in_openais_shape(
    error: GenyardError, status: int, type_: str, code: str | None, retry: str
) -> None:
    got_status, body, headers = rendered(error)
    assert (got_status, body["type"], body["code"]) == (status, type_, code)
    assert headers["x-should-retry"] == retry
    if status == 429:
        assert headers["retry-after"] == "7"
    if status == 504:
        assert body["message"] == "late (prediction pred_1)"
        assert headers["x-genyard-prediction-id"] == "pred_1"
    if status == 404:
        assert body["message"].startswith("Invalid URL")


def test_param_names_the_field_in_openais_names() -> None:
    _, body, _ = rendered(bad_param("tools", "not supported"))
    assert body["param"] == "tools"
    _, body, _ = rendered(model_not_found("a/b"))
    assert (body["param"], body["code"]) == ("model", "model_not_found")
    error = InvalidRequest("x", {"errors": [{"field": "input.text[1]", "message": "too long"}]})
    _, body, _ = rendered(renamed(error, {"text": "input"}))
    assert body["param"] == "input[1]"
    assert body["message"] == "input[1]: too long"


@pytest.mark.parametrize(
    ("job_code", "status"),
    [
        ("invalid_input", 400),
        ("canceled", 409),
        ("provider_unavailable", 503),
        ("timeout", 504),
        ("queue_timeout", 504),
        ("provider_error", 502),
        ("worker_lost", 500),
    ],
)
def test_a_failed_job_is_never_retried(job_code: str, status: int) -> None:
    ended = JobStatus.CANCELED if job_code == "canceled" else JobStatus.FAILED
    job = Job("pred_9", "acct", "user", "m/x", {}, ended, 0.0)
    job.error_code, job.error_message = job_code, "it broke"
    got_status, body, headers = rendered(job_failure(job))
    assert (got_status, body["code"]) == (status, job_code)
    assert body["message"] == f"prediction pred_9 {ended.value} ({job_code}): it broke"
    assert headers["x-should-retry"] == "false"
