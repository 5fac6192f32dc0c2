"""``POST /api/image2text`` (OCR), ``POST /api/t2m``, ``POST /api/t2i``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictStr
from starlette.responses import Response

from genyard.api.deps import ServicesDep, json_body
from genyard.api.responses import JSON
from genyard.api.simple import calls
from genyard.api.simple.forms import Form

router = APIRouter(tags=["simple"])


@router.post("/api/image2text")
async def image2text(request: Request, services: ServicesDep, principal: calls.GenerateDep) -> JSON:
    """OCR, not captioning: no image-description model runs here, so the answer is the
    text printed in the image, read by the catalog's default OCR model (tesseract).
    ``prompt`` and ``temperature`` are checked and ignored (OCR reads no instructions)."""
    async with Form.parts(request, services) as form:
        upload = await form.file("image", "image", "the image to read")
        form.text("prompt")
        form.number("temperature", 0.0, 1.0)
    assert upload is not None
    entry = calls.default_model(services, "ocr")
    job = await calls.predict(services, principal, entry, {}, route="image2text", uploads=[upload])
    return calls.json_answer(job, {"text": str(job.output.get("text", "")).strip()})


class T2mBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    prompt: StrictStr = Field(min_length=1)
    audio_duration: float | None = Field(default=None, gt=0)


@router.post("/api/t2m")
async def t2m(request: Request, services: ServicesDep, principal: calls.GenerateDep) -> Response:
    body = await json_body(request, T2mBody)
    entry = calls.default_model(services, "music")
    input: dict[str, Any] = {"prompt": body.prompt}
    if body.audio_duration is not None:
        input["audio_duration"] = body.audio_duration
    job = await calls.predict(services, principal, entry, input, route="t2m")
    return await calls.file_answer(services, job, "audio")


class T2iBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    prompt: StrictStr = Field(min_length=1)
    negative_prompt: StrictStr | None = None
    width: int | None = None
    height: int | None = None
    num_inference_steps: int | None = None


@router.post("/api/t2i")
async def t2i(request: Request, services: ServicesDep, principal: calls.GenerateDep) -> Response:
    body = await json_body(request, T2iBody)
    input = body.model_dump(exclude_none=True)
    entry = calls.default_or(services, "image", "genyard/text-to-image", input)
    job = await calls.predict(services, principal, entry, input, route="t2i")
    output = job.output if isinstance(job.output, dict) else {}
    if "image" in output:
        return await calls.file_answer(services, job, "image")
    return await calls.file_answer(services, job, "images", index=0)
