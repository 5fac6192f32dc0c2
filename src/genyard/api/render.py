"""Rendering domain objects in the native face's shapes (core-today-api.txt).

Rendering needs no request: ``prediction(job, services.files.links)`` works in a
webhook dispatcher or a stream as well as in a response. Every rendering signs the
job's private file URLs afresh (see :class:`~genyard.services.file_links.FileLinks`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from genyard.domain.billing import job_usage
from genyard.domain.jobs import Job
from genyard.services.file_links import FileLinks


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def prediction(job: Job, links: FileLinks, *, with_logs: bool = True) -> dict[str, Any]:
    """A prediction, its file URLs signed; list items leave out ``logs`` (read one
    prediction for them). ``links``: ``services.files.links``."""
    url = f"{links.base_url}/v1/predictions/{job.id}"
    input, output = links.present(job)
    body: dict[str, Any] = {
        "id": job.id,
        "model": job.model,
        "status": job.status.value,
        "input": input,
        "output": output,
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
        "logs": "\n".join(job.logs),
        "progress": job.progress,
        "metrics": job.metrics,
        "is_public": job.is_public,
        "output_folder": job.output_folder,
        "webhook": job.webhook_url,
        "webhook_events": job.webhook_events,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "completed_at": iso(job.completed_at),
        "urls": {"get": url, "cancel": url, "stream": f"{url}/stream"},
    }
    if not with_logs:
        del body["logs"]
    if job.queue_position is not None:
        body["queue_position"] = job.queue_position
    usage = job_usage(job)
    if usage is not None:
        body["usage"] = usage
    return body
