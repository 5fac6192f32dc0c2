"""The task object (``GET /v1/tasks/{id}``), which callbacks send too.

Statuses: ``pending`` and ``processing`` as they are, ``succeeded`` -> ``completed``,
``failed`` and ``canceled`` -> ``failed`` (a canceled task's ``error.code`` is
``canceled``; DESIGN.md, "Statuses"). Rendering needs no request, so the webhook
dispatcher renders the callback body with the same function: a task that has ended
renders the same bytes every time (its result URLs' expiry is anchored to the end of
the task, not to the moment of rendering), so the callback body equals what
``GET /v1/tasks/{id}`` answers.
"""

from __future__ import annotations

import math
from typing import Any

from genyard.api.tasks.requests import created_of
from genyard.domain.catalog import ModelEntry
from genyard.domain.jobs import Job, JobStatus
from genyard.domain.pricing import credits
from genyard.services.file_links import FileLinks

OBJECT = "video.generation.task"
#: genyard has no per-group prices: every account pays the catalog's.
USER_GROUP = "default"
_STATUSES = {
    JobStatus.PENDING: "pending",
    JobStatus.PROCESSING: "processing",
    JobStatus.SUCCEEDED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELED: "failed",
}


def task_status(job: Job) -> str:
    """The job's status in this face's words."""
    return _STATUSES[job.status]


def url_expiry(job: Job, now: float, seconds: int) -> int | None:
    """When the result URLs of an ended task expire: the end of the next whole
    ``seconds`` window after the task's end (so they stay valid ``seconds`` to twice
    that, and every rendering within one window signs the same URLs). None for a task
    that has not ended."""
    if job.completed_at is None:
        return None
    window = max(0, math.floor((now - job.completed_at) / seconds))
    return math.ceil(job.completed_at + (window + 2) * seconds)


def estimated_seconds(job: Job, estimate: float | None, entry: ModelEntry | None) -> int:
    """A task that has not ended: the time estimate given (the model's history), else
    the catalog's ``expected_seconds``. An ended one: the time it ran (0 if it never
    started)."""
    if job.status.is_terminal():
        if job.started_at is None or job.completed_at is None:
            return 0
        return math.ceil(job.completed_at - job.started_at)
    if estimate is None:
        estimate = entry.expected_seconds if entry and entry.expected_seconds else 0.0
    return math.ceil(estimate)


def _results(output: Any) -> list[str]:
    if isinstance(output, dict):
        value = output.get("video")
        return [value] if isinstance(value, str) else []
    return []


def _usage(job: Job, entry: ModelEntry | None) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "billing_rule": entry.pricing.rule if entry is not None else "per_second",
        "credits_reserved": credits(job.credits_held or 0),
        "user_group": USER_GROUP,
    }
    if job.status.is_terminal() and job.credits_held is not None:
        usage["credits_charged"] = credits(job.credits_charged or 0)
    return usage


def task(
    job: Job,
    entry: ModelEntry | None,
    links: FileLinks,
    *,
    now: float,
    estimate: float | None = None,
) -> dict[str, Any]:
    """The task object of ``job`` (made by this face: ``job.task_id`` is set)."""
    assert job.task_id is not None
    seconds = (job.usage or {}).get("seconds")
    body: dict[str, Any] = {
        "id": job.task_id,
        "object": OBJECT,
        "created": created_of(job.task_id),
        "model": job.model,
        "progress": 100 if job.status is JobStatus.SUCCEEDED else max(0, min(100, job.progress)),
        "status": task_status(job),
        "task_info": {
            "can_cancel": not job.status.is_terminal(),
            "estimated_time": estimated_seconds(job, estimate, entry),
            "video_duration": seconds if isinstance(seconds, int | float) else 0,
        },
        "type": "video",
        "usage": _usage(job, entry),
    }
    if job.status is JobStatus.SUCCEEDED:
        expires_at = url_expiry(job, now, links.signed_seconds)
        _, output = links.present(job, expires_at=expires_at)
        body["results"] = _results(output)
    if job.status in (JobStatus.FAILED, JobStatus.CANCELED):
        fallback = "canceled" if job.status is JobStatus.CANCELED else "internal"
        body["error"] = {
            "code": job.error_code or fallback,
            "message": job.error_message or "",
        }
    return body
