"""Domain errors.

Two families, kept apart on purpose:

    GenyardError                 a request cannot be served; each face renders it
    ├── InvalidRequest     400   invalid_request   (bad field, malformed body)
    ├── Unauthorized       401   unauthorized      (no key, unknown or revoked key)
    ├── InsufficientCredits 402  insufficient_credits
    ├── Forbidden          403   forbidden         (key lacks a scope, not an admin)
    ├── NotFound           404   not_found
    ├── Conflict           409   conflict          (terminal job, idempotency clash)
    ├── PayloadTooLarge    413   payload_too_large
    ├── UnsupportedMediaType 415 unsupported_media_type
    ├── RateLimited        429   rate_limit_exceeded
    ├── InternalError      500   internal_error    (never carries a stack trace)
    ├── BadGateway         502   bad_gateway       (a face's job failed provider_error, or
    │                                               its output file cannot be read)
    ├── ServiceUnavailable 503   unavailable       (a face's job failed provider_unavailable:
    │                                               the model's engine cannot run here)
    └── GatewayTimeout     504   timeout           (a face's sync wait ran out; its job
                                                    was canceled and its hold released)

    JobError                     a job ended badly: a *status with a reason*, never a 500
    ├── InvalidInput             invalid_input        (the provider rejected the input)
    ├── ProviderError            provider_error       (the engine failed)
    ├── ProviderUnavailable      provider_unavailable (the engine cannot run here)
    └── RunTimedOut              timeout              (the worker stopped waiting)

Job error codes are a closed list (:class:`JobErrorCode`); providers raise ``JobError``
subclasses chained ``from`` the vendor exception.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class GenyardError(Exception):
    """A request that cannot be served. ``code`` and ``status`` are the native face's."""

    code = "internal_error"
    status = 500

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidRequest(GenyardError):
    code = "invalid_request"
    status = 400


class Unauthorized(GenyardError):
    code = "unauthorized"
    status = 401


class InsufficientCredits(GenyardError):
    code = "insufficient_credits"
    status = 402


class Forbidden(GenyardError):
    code = "forbidden"
    status = 403


class NotFound(GenyardError):
    code = "not_found"
    status = 404


class Conflict(GenyardError):
    code = "conflict"
    status = 409


class PayloadTooLarge(GenyardError):
    code = "payload_too_large"
    status = 413


class UnsupportedMediaType(GenyardError):
    code = "unsupported_media_type"
    status = 415


class RateLimited(GenyardError):
    code = "rate_limit_exceeded"
    status = 429

    def __init__(
        self, message: str, details: dict[str, Any] | None = None, retry_after: int = 1
    ) -> None:
        super().__init__(message, details)
        self.retry_after = retry_after


class InternalError(GenyardError):
    code = "internal_error"
    status = 500


class BadGateway(GenyardError):
    """The model's engine failed (a face's job failed ``provider_error``), or its
    output cannot be read back."""

    code = "bad_gateway"
    status = 502


class ServiceUnavailable(GenyardError):
    """The model's engine cannot run here (a face's job failed ``provider_unavailable``,
    or the simple face's model has no provider)."""

    code = "unavailable"
    status = 503


class GatewayTimeout(GenyardError):
    code = "timeout"
    status = 504


class JobErrorCode(StrEnum):
    """Why a job failed: the closed list shown as ``error.code``."""

    INVALID_INPUT = "invalid_input"
    TIMEOUT = "timeout"
    QUEUE_TIMEOUT = "queue_timeout"
    WORKER_LOST = "worker_lost"
    CANCELED = "canceled"
    PROVIDER_ERROR = "provider_error"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    INTERNAL = "internal"


class JobError(Exception):
    """Raised by a provider: the job fails with ``code`` and ``message``."""

    code: JobErrorCode = JobErrorCode.PROVIDER_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(JobError):
    code = JobErrorCode.INVALID_INPUT


class ProviderError(JobError):
    code = JobErrorCode.PROVIDER_ERROR


class ProviderUnavailable(JobError):
    code = JobErrorCode.PROVIDER_UNAVAILABLE


class RunTimedOut(JobError):
    """Raised by the worker, not providers: the run passed the model's ``timeout``."""

    code = JobErrorCode.TIMEOUT
