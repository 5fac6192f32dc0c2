"""Pure webhook rules: events per move, retry delays, derived secrets, and signatures
checked against the standardwebhooks package (an independent implementation)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from genyard.domain.jobs import JobStatus
from genyard.domain.webhooks import (
    WebhookEvent,
    account_secret,
    events_for,
    parse_delays,
    sign,
    signature_header,
    subscribed,
)

SERVER_SECRET = "s" * 64


def test_events_per_move() -> None:
    assert events_for(JobStatus.PROCESSING, False) == (WebhookEvent.START,)
    assert events_for(JobStatus.SUCCEEDED, True) == (WebhookEvent.OUTPUT, WebhookEvent.COMPLETED)
    assert events_for(JobStatus.SUCCEEDED, False) == (WebhookEvent.COMPLETED,)
    assert events_for(JobStatus.FAILED, False) == (WebhookEvent.FAILED,)
    assert events_for(JobStatus.CANCELED, False) == (WebhookEvent.FAILED,)
    assert events_for(JobStatus.PENDING, False) == ()
    both = (WebhookEvent.OUTPUT, WebhookEvent.COMPLETED)
    assert subscribed(both, "completed,failed") == [WebhookEvent.COMPLETED]
    assert subscribed(both, "") == []


def test_retry_delays() -> None:
    assert parse_delays("1,2,4") == (1.0, 2.0, 4.0)
    assert parse_delays(" 0.5 , 3 ") == (0.5, 3.0)
    assert parse_delays("") == ()
    with pytest.raises(ValueError):
        parse_delays("1,-2")


def test_secrets_are_derived_per_account_and_generation() -> None:
    first = account_secret(SERVER_SECRET, "acct_1", 0)
    assert first.startswith("whsec_")
    assert account_secret(SERVER_SECRET, "acct_1", 0) == first
    assert account_secret(SERVER_SECRET, "acct_2", 0) != first
    assert account_secret(SERVER_SECRET, "acct_1", 1) != first
    assert account_secret("t" * 64, "acct_1", 0) != first
    Webhook(first)  # a secret the reference implementation accepts


def test_signatures_verify_with_the_reference_implementation() -> None:
    secret = account_secret(SERVER_SECRET, "acct_1", 0)
    body = '{"id": "pred_1", "output": "안녕"}'.encode()
    now = int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(secret, "msg_1", now, body),
    }
    assert Webhook(secret).verify(body, headers) == {"id": "pred_1", "output": "안녕"}
    reference = Webhook(secret).sign("msg_1", datetime.fromtimestamp(now, UTC), body.decode())
    assert headers["webhook-signature"] == reference
    for tampered in (
        {**headers, "webhook-id": "msg_2"},
        {**headers, "webhook-timestamp": str(now - 1)},
    ):
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(body, tampered)
    with pytest.raises(WebhookVerificationError):
        Webhook(account_secret(SERVER_SECRET, "acct_2", 0)).verify(body, headers)


def test_the_header_carries_one_signature_per_secret() -> None:
    old, new = (account_secret(SERVER_SECRET, "acct_1", v) for v in (0, 1))
    now = int(time.time())
    header = signature_header([new, old], "msg_1", now, b"{}")
    assert len(header.split(" ")) == 2
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": header}
    for secret in (old, new):
        Webhook(secret).verify(b"{}", headers)
