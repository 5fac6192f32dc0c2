"""Jobs (predictions): statuses, the allowed transitions and the job record."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class JobStatus(StrEnum):
    """Canonical job statuses. Faces map them to their own words."""

    PENDING = "pending"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED})

#: Every legal move. ``processing -> pending`` is the reaper returning a lost job.
ALLOWED_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PENDING: frozenset({JobStatus.PROCESSING, JobStatus.CANCELED, JobStatus.FAILED}),
    JobStatus.PROCESSING: frozenset(
        {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.PENDING}
    ),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELED: frozenset(),
}


def sources_of(to: JobStatus) -> frozenset[JobStatus]:
    """The statuses a job may be in to move to ``to``."""
    return frozenset(src for src, dests in ALLOWED_TRANSITIONS.items() if to in dests)


DEFAULT_WEBHOOK_EVENTS = ("completed", "failed")
WEBHOOK_EVENTS = frozenset({"start", "output", "logs", "completed", "failed"})


@dataclass(slots=True)
class Job:
    """One prediction row as the domain sees it."""

    id: str
    account_id: str
    user_id: str
    model: str
    input: dict[str, Any]
    status: JobStatus
    created_at: float
    output: Any = None
    error_code: str | None = None
    error_message: str | None = None
    progress: int = 0
    is_public: bool = False
    output_folder: str | None = None
    webhook_url: str | None = None
    webhook_events: list[str] = field(default_factory=lambda: list(DEFAULT_WEBHOOK_EVENTS))
    attempts: int = 0
    started_at: float | None = None
    completed_at: float | None = None
    usage: dict[str, Any] | None = None
    #: Micro-credits held at submit and charged at the end (None: not billed).
    credits_held: int | None = None
    credits_charged: int | None = None
    #: The tasks face's id for a job it made (its callbacks are task callbacks).
    task_id: str | None = None
    logs: list[str] = field(default_factory=list)
    queue_position: int | None = None

    @property
    def metrics(self) -> dict[str, float | None]:
        """``total_time``, ``queue_time`` and ``run_time`` in seconds, when known."""
        queue_time = run_time = total_time = None
        if self.started_at is not None:
            queue_time = round(self.started_at - self.created_at, 4)
        if self.completed_at is not None:
            total_time = round(self.completed_at - self.created_at, 4)
            if self.started_at is not None:
                run_time = round(self.completed_at - self.started_at, 4)
        return {"total_time": total_time, "queue_time": queue_time, "run_time": run_time}
