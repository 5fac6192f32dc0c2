"""Webhooks, the pure parts: which event a status change is, the retry schedule,
per-account secrets and Standard Webhooks signatures (https://www.standardwebhooks.com).

A secret is ``whsec_`` + base64 of 32 bytes; the signing key is those bytes. Each
account's secret is derived from the server secret and the account's secret
generation, so nothing secret is stored and rotating is a counter. A signature is
``v1,`` + base64(HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")); the
header carries several, space-separated, while a rotated-out secret is still honoured.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from enum import StrEnum

from genyard.domain.jobs import JobStatus

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
#: After a rotation, deliveries carry the old secret's signature too for this long.
ROTATION_GRACE_SECONDS = 24 * 3600
#: Task callbacks (the tasks face, evolink-video-upscale.txt) keep the seed's contract
#: whatever the webhook settings say: 10 s an attempt, 3 retries after 1, 2 and 4 s.
TASK_CALLBACK_TIMEOUT = 10.0
TASK_CALLBACK_DELAYS = (1.0, 2.0, 4.0)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookEvent(StrEnum):
    START = "start"
    OUTPUT = "output"
    LOGS = "logs"
    COMPLETED = "completed"
    FAILED = "failed"


def events_for(to: JobStatus, has_output: bool) -> tuple[WebhookEvent, ...]:
    """The events a job's move to ``to`` raises: ``start`` when it starts, ``output``
    and ``completed`` when it succeeds (``output`` only with an output), ``failed`` when
    it fails or is canceled; none when it goes back to the queue."""
    if to is JobStatus.PROCESSING:
        return (WebhookEvent.START,)
    if to is JobStatus.SUCCEEDED:
        if has_output:
            return (WebhookEvent.OUTPUT, WebhookEvent.COMPLETED)
        return (WebhookEvent.COMPLETED,)
    if to in (JobStatus.FAILED, JobStatus.CANCELED):
        return (WebhookEvent.FAILED,)
    return ()


def subscribed(events: Iterable[WebhookEvent], stored: str) -> list[WebhookEvent]:
    """``events`` the job asked for; ``stored`` is the job's comma-separated list."""
    wanted = stored.split(",")
    return [event for event in events if event.value in wanted]


def parse_delays(text: str) -> tuple[float, ...]:
    """``"1,2,4"`` -> (1.0, 2.0, 4.0): the waits before each retry. Empty: no retries."""
    delays = tuple(float(part) for part in text.split(",") if part.strip())
    if any(delay < 0 for delay in delays):
        raise ValueError("retry delays must not be negative")
    return delays


def account_secret(server_secret: str, account_id: str, version: int) -> str:
    """The account's ``whsec_`` secret of generation ``version``."""
    material = f"genyard webhook secret|{account_id}|{version}".encode()
    key = hmac.new(server_secret.encode(), material, hashlib.sha256).digest()
    return SECRET_PREFIX + base64.b64encode(key).decode()


def signing_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One Standard Webhooks signature: ``v1,<base64 HMAC-SHA256>``."""
    message = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one signature per secret, space-separated."""
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets)
