"""``POST /v1/videos/generations``: the body, its checks, and the job it becomes.

The seed's fields (evolink-video-upscale.txt): ``model`` (``topaz-video-upscale``, an
alias in the catalog; a video upscaler's own id works too), ``video_urls`` (exactly one
.mp4 URL), ``model_params`` (the upscaler's input besides the video: ``scale``, or
``upscale_factor`` as Topaz names it) and ``callback_url`` (HTTPS, at most 2048
characters; its address is checked by the URL guard at submit and at every delivery).
"""

from __future__ import annotations

import secrets
import string
import time
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from genyard.api.tasks.errors import invalid
from genyard.domain.catalog import Catalog, ModelEntry
from genyard.domain.validation import FieldError
from genyard.errors import InvalidRequest
from genyard.services.predictions import SubmitRequest

DEFAULT_MODEL = "topaz-video-upscale"
TASK_PREFIX = "task-unified-"
MAX_CALLBACK_URL = 2048
#: A task callback fires once, when the task ends (completed, failed or canceled).
CALLBACK_EVENTS = ["completed", "failed"]
_ID_CHARS = string.ascii_lowercase + string.digits


class TaskCreate(BaseModel):
    """Body of ``POST /v1/videos/generations``."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        default=DEFAULT_MODEL,
        min_length=1,
        max_length=200,
        description="`topaz-video-upscale` (runs Real-ESRGAN locally, not Topaz), or the "
        "catalog id of a video upscaler.",
    )
    video_urls: list[str] = Field(description="Exactly one .mp4 URL (or a data:video/mp4 URI).")
    model_params: dict[str, Any] | None = Field(
        default=None, description="`scale` (or `upscale_factor`): 2, 3 or 4; default 2."
    )
    callback_url: str | None = Field(
        default=None, description="HTTPS URL called once the task ends; at most 2048 characters."
    )


def new_task_id(now: float | None = None) -> str:
    """``task-unified-<unix time>-<8 lowercase letters and digits>``."""
    stamp = int(time.time() if now is None else now)
    return f"{TASK_PREFIX}{stamp}-" + "".join(secrets.choice(_ID_CHARS) for _ in range(8))


def created_of(task_id: str) -> int:
    """The unix time a task id carries (its ``created``)."""
    return int(task_id.removeprefix(TASK_PREFIX).split("-", 1)[0])


def is_task_id(value: str) -> bool:
    rest = value.removeprefix(TASK_PREFIX)
    stamp, _, suffix = rest.partition("-")
    return (
        value.startswith(TASK_PREFIX)
        and stamp.isdigit()
        and len(suffix) == 8
        and set(suffix) <= set(_ID_CHARS)
    )


def video_model(catalog: Catalog, name: str) -> str:
    """The catalog id ``name`` stands for (an alias's model, or ``name`` itself)."""
    alias = catalog.alias(name)
    return alias.model if alias is not None else name


def check_video_model(entry: ModelEntry) -> None:
    if entry.type != "upscale" or entry.capabilities.get("media") != "video" or not entry.files:
        raise invalid(
            "model", f"{entry.id} is not a video upscaler; use {DEFAULT_MODEL!r} on this face"
        )


def _video_url(urls: list[str]) -> str:
    if len(urls) != 1:
        raise invalid("video_urls", f"must hold exactly one video URL, got {len(urls)}")
    url = urls[0].strip()
    if url.lower().startswith("data:"):
        if url[5:].split(";", 1)[0].split(",", 1)[0].strip().lower() != "video/mp4":
            raise invalid("video_urls[0]", "a data URI must be of type video/mp4")
        return url
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise invalid("video_urls[0]", "must be an http(s) URL of an .mp4 file")
    if not parts.path.lower().endswith(".mp4"):
        raise invalid("video_urls[0]", "must be the URL of an .mp4 file (its path ends in .mp4)")
    return url


def _callback_url(url: str | None) -> str | None:
    """Form checks only; the URL guard judges the address (at submit and delivery)."""
    if url is None:
        return None
    if len(url) > MAX_CALLBACK_URL:
        raise invalid("callback_url", f"must be at most {MAX_CALLBACK_URL} characters")
    if urlsplit(url).scheme.lower() != "https":
        raise invalid("callback_url", "must be an HTTPS URL (https://...)")
    return url


def model_input(video: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """The upscaler's input: the video, plus ``model_params`` (``upscale_factor`` is
    read as ``scale``)."""
    params = dict(params or {})
    if "upscale_factor" in params:
        factor = params.pop("upscale_factor")
        if "scale" in params and params["scale"] != factor:
            raise invalid("model_params.upscale_factor", "differs from scale; send one of them")
        params["scale"] = factor
    if "video" in params:
        raise invalid("model_params.video", "the video is given in video_urls")
    return {"video": video, **params}


def submit_request(body: TaskCreate, model_id: str, task_id: str) -> SubmitRequest:
    video = _video_url(body.video_urls)
    callback = _callback_url(body.callback_url)
    return SubmitRequest(
        model=model_id,
        input=model_input(video, body.model_params),
        webhook_url=callback,
        webhook_events=list(CALLBACK_EVENTS) if callback else None,
        webhook_field="callback_url",
        task_id=task_id,
    )


def _face_field(name: str) -> str:
    """Where a field of the upscaler's input came from in this face's body."""
    if name == "input.video" or name.startswith("input.video["):
        return "video_urls[0]"
    if name.startswith("input."):
        return "model_params." + name.removeprefix("input.")
    return name


def in_face_terms(error: InvalidRequest) -> InvalidRequest:
    """A submit error with the upscaler's input fields renamed to this face's fields."""
    found = error.details.get("errors")
    if not isinstance(found, list) or not found:
        return error
    errors = [
        FieldError(_face_field(str(e.get("field", ""))), str(e.get("message", "")))
        for e in found
        if isinstance(e, dict)
    ]
    message = "; ".join(f"{e.field}: {e.message}" for e in errors)
    renamed = InvalidRequest(message, {"errors": [e.as_dict() for e in errors]})
    renamed.__cause__ = error
    return renamed
