"""domain/jobs: statuses, the allowed transitions and job metrics."""

from __future__ import annotations

import pytest

from genyard.domain.jobs import (
    ALLOWED_TRANSITIONS,
    DEFAULT_WEBHOOK_EVENTS,
    WEBHOOK_EVENTS,
    Job,
    JobStatus,
    sources_of,
)
from genyard.errors import JobErrorCode

P, R, S, F, C = (
    JobStatus.PENDING,
    JobStatus.PROCESSING,
    JobStatus.SUCCEEDED,
    JobStatus.FAILED,
    JobStatus.CANCELED,
)


def test_the_five_canonical_statuses() -> None:
    assert [s.value for s in JobStatus] == [
        "pending",
        "processing",
        "succeeded",
        "failed",
        "canceled",
    ]


@pytest.mark.parametrize(
    ("status", "terminal"), [(P, False), (R, False), (S, True), (F, True), (C, True)]
)
def test_is_terminal(status: JobStatus, terminal: bool) -> None:
    assert status.is_terminal() is terminal


def test_allowed_transitions_exactly() -> None:
    allowed = {(a, b) for a, dests in ALLOWED_TRANSITIONS.items() for b in dests}
    assert allowed == {
        (P, R), (P, C), (P, F),
        (R, S), (R, F), (R, C), (R, P),
    }  # fmt: skip
    assert set(ALLOWED_TRANSITIONS) == set(JobStatus)


def test_terminal_statuses_never_move_again() -> None:
    for status in JobStatus:
        if status.is_terminal():
            assert ALLOWED_TRANSITIONS[status] == frozenset()


def test_sources_of() -> None:
    assert sources_of(S) == {R}
    assert sources_of(C) == {P, R}
    assert sources_of(F) == {P, R}
    assert sources_of(R) == {P}
    assert sources_of(P) == {R}


def test_job_metrics() -> None:
    job = Job("pred_1", "acct", "user", "a/b", {}, P, created_at=100.0)
    assert job.metrics == {"total_time": None, "queue_time": None, "run_time": None}
    job.started_at = 100.25
    assert job.metrics == {"total_time": None, "queue_time": 0.25, "run_time": None}
    job.completed_at = 101.0
    assert job.metrics == {"total_time": 1.0, "queue_time": 0.25, "run_time": 0.75}
    never_started = Job("pred_2", "acct", "user", "a/b", {}, C, created_at=100.0)
    never_started.completed_at = 102.0
    assert never_started.metrics == {"total_time": 2.0, "queue_time": None, "run_time": None}


def test_webhook_events_and_their_default() -> None:
    assert {"start", "output", "logs", "completed", "failed"} == WEBHOOK_EVENTS
    assert DEFAULT_WEBHOOK_EVENTS == ("completed", "failed")
    job = Job("pred_1", "acct", "user", "a/b", {}, P, created_at=0.0)
    assert job.webhook_events == ["completed", "failed"]
    job.webhook_events.append("start")
    assert Job("pred_2", "acct", "user", "a/b", {}, P, 0.0).webhook_events == [
        "completed",
        "failed",
    ]


def test_job_error_codes_are_the_closed_documented_list() -> None:
    assert {c.value for c in JobErrorCode} == {
        "invalid_input",
        "timeout",
        "queue_timeout",
        "worker_lost",
        "canceled",
        "provider_error",
        "provider_unavailable",
        "internal",
    }
