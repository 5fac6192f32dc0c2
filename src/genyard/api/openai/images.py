"""``POST /llm/openai/v1/images/generations``.

Without ``model`` the catalog's default image model is used: ``genyard/text-to-image``,
unavailable until a remote provider serves it, so the answer is a 400 naming
``model`` with the reason. ``model: "chienliu/dcgan-faces-64"`` generates with the only
local image model: random 64x64 faces, unconditional, so ``prompt`` is accepted and
ignored (the SDK requires one), ``n`` (1-16) is the count, ``size`` must be ``64x64``
when given, and ``response_format`` is ``b64_json`` (the default: the PNG inline) or
``url`` (a signed genyard file URL, valid for ``GENYARD_SIGNED_URL_SECONDS``).
A text-conditioned model (one whose input takes ``prompt``) gets ``prompt`` and, where
its schema has them, ``negative_prompt``, ``width`` and ``height`` from ``size``.
``quality``, ``style``, ``user`` and ``background`` are ignored.
"""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from genyard.api import face_calls
from genyard.api.deps import ServicesDep, json_body
from genyard.api.openai.common import Generate, find_model
from genyard.api.openai.errors import bad_param
from genyard.api.responses import JSON
from genyard.domain.catalog import ModelEntry
from genyard.errors import InvalidRequest

router = APIRouter(tags=["openai"])


class ImageRequest(BaseModel):
    prompt: str
    model: str | None = None
    n: int | None = None
    size: str | None = None
    response_format: str | None = None
    negative_prompt: str | None = None


def _size(value: str | None) -> tuple[int, int] | None:
    if value is None or value == "auto":
        return None
    width, sep, height = value.partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise bad_param("size", f"must be WIDTHxHEIGHT, e.g. 1024x1024, got {value!r}")
    return int(width), int(height)


def image_input(entry: ModelEntry, body: ImageRequest) -> dict[str, Any]:
    props = entry.input_schema.get("properties", {})
    size = _size(body.size)
    input: dict[str, Any] = {}
    if "prompt" in props:
        input["prompt"] = body.prompt
        if body.negative_prompt is not None and "negative_prompt" in props:
            input["negative_prompt"] = body.negative_prompt
        if size is not None and "width" in props and "height" in props:
            input["width"], input["height"] = size
    else:  # an unconditional model: fixed size, the prompt ignored
        fixed = (entry.capabilities.get("width"), entry.capabilities.get("height"))
        if size is not None and size != fixed:
            raise bad_param("size", f"{entry.id} makes {fixed[0]}x{fixed[1]} images only")
    if body.n is not None and body.n != 1:
        if "count" not in props:
            raise bad_param("n", f"{entry.id} makes one image per request")
        input["count"] = body.n
    return input


@router.post("/llm/openai/v1/images/generations")
async def create_image(request: Request, services: ServicesDep, principal: Generate) -> JSON:
    body = await json_body(request, ImageRequest)
    response_format = body.response_format or "b64_json"
    if response_format not in ("b64_json", "url"):
        raise bad_param("response_format", "must be 'b64_json' or 'url'")
    if body.model is None:
        default = services.catalog.default_for("image")
        if default is None:
            raise InvalidRequest("model: no default image model is configured", {"field": "model"})
        model_id = default.id
    else:
        model_id = body.model
    entry = find_model(services, model_id, "image", "POST /llm/openai/v1/images/generations")
    input = image_input(entry, body)
    job = await face_calls.run(services, principal, entry.id, input, names={"count": "n"})
    _, output = services.files.links.present(job)
    urls = output.get("images", []) if isinstance(output, dict) else []
    data: list[dict[str, Any]] = []
    for i, url in enumerate(urls):
        if response_format == "url":
            data.append({"url": url, "revised_prompt": None})
        else:
            image = await face_calls.output_file(services, job, "images", index=i)
            data.append({"b64_json": base64.b64encode(image.data).decode("ascii")})
    return JSON(
        {"created": int(job.created_at), "data": data},
        headers={"x-genyard-prediction-id": job.id},
    )
