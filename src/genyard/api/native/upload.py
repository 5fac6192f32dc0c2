"""``POST /v1/predictions/upload``: a prediction with files attached, as multipart parts.

Parts: ``model``; ``input`` (a JSON object as text, default ``{}``); ``file:<field>``
(repeatable: files for the model's file field ``<field>``, appended after any URLs the
input already lists); ``is_public``, ``output_folder``, ``webhook`` or ``webhook_url``,
``webhook_events`` (a JSON array or a comma-separated list). Headers, checks and the
201 answer are those of ``POST /v1/predictions``; the body may be up to
``GENYARD_MAX_UPLOAD_BYTES``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Request
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from genyard.api.deps import ServicesDep, require
from genyard.api.native.predictions import submit_and_respond
from genyard.api.responses import JSON
from genyard.domain.accounts import Principal, Scope
from genyard.domain.files import UploadedFile
from genyard.domain.validation import FieldError
from genyard.errors import PayloadTooLarge, UnsupportedMediaType
from genyard.services.predictions import SubmitRequest, invalid

router = APIRouter(tags=["predictions"])
UPLOAD_PATH = "/v1/predictions/upload"
FILE_PREFIX = "file:"
MAX_PARTS = 1000
TEXT_PARTS = frozenset(
    {"model", "input", "is_public", "output_folder", "webhook", "webhook_url", "webhook_events"}
)
_TRUE, _FALSE = frozenset({"true", "1", "yes", "on"}), frozenset({"false", "0", "no", "off", ""})

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["model"],
                    "properties": {
                        "model": {"type": "string"},
                        "input": {"type": "string", "description": "A JSON object."},
                        "file:<field>": {"type": "string", "format": "binary"},
                        "is_public": {"type": "boolean"},
                        "output_folder": {"type": "string"},
                        "webhook_url": {"type": "string"},
                        "webhook_events": {"type": "string"},
                    },
                }
            }
        },
    }
}


async def limited(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    """The body, cut off past ``limit`` bytes (a body sent without Content-Length)."""
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(f"request body exceeds {limit} bytes", {"limit": limit})
        yield chunk


async def read_form(request: Request, max_body: int, max_text_part: int) -> FormData:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "multipart/form-data":
        raise UnsupportedMediaType(
            f"Content-Type must be multipart/form-data, got {content_type or 'none'!r}",
            {"content_type": content_type},
        )
    parser = MultiPartParser(
        request.headers,
        limited(request, max_body),
        max_files=MAX_PARTS,
        max_fields=MAX_PARTS,
        max_part_size=max_text_part,
    )
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise invalid([FieldError("body", f"malformed multipart body: {exc.message}")]) from None


async def _text(value: str | UploadFile) -> str:
    if isinstance(value, str):
        return value
    return (await value.read()).decode("utf-8", errors="replace")  # e.g. -F input=@in.json


def _boolean(value: str, part: str, errors: list[FieldError]) -> bool:
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() not in _FALSE:
        errors.append(FieldError(part, f"must be true or false, got {value!r}"))
    return False


def _events(value: str, errors: list[FieldError]) -> list[str] | None:
    text = value.strip()
    if not text:
        return None
    if text.startswith("["):
        try:
            events = orjson.loads(text)
        except orjson.JSONDecodeError:
            events = None
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            errors.append(FieldError("webhook_events", "must be a JSON array of strings"))
            return None
        return events
    return [event.strip() for event in text.split(",") if event.strip()]


def _input(value: str | None, errors: list[FieldError]) -> dict[str, Any]:
    if value is None or not value.strip():
        return {}
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        errors.append(FieldError("input", f"is not valid JSON: {exc}"))
        return {}
    if not isinstance(parsed, dict):
        errors.append(FieldError("input", "must be a JSON object"))
        return {}
    return parsed


async def submit_request(form: FormData, idempotency_key: str | None) -> SubmitRequest:
    """The parts as a :class:`SubmitRequest`; every bad part named in one 400."""
    errors: list[FieldError] = []
    texts: dict[str, str] = {}
    uploads: list[UploadedFile] = []
    for name, value in form.multi_items():
        if name.startswith(FILE_PREFIX):
            if not isinstance(value, UploadFile):
                errors.append(FieldError(name, "must be a file (a part with a filename)"))
                continue
            field, data = name[len(FILE_PREFIX) :], await value.read()
            uploads.append(UploadedFile(field, data, value.content_type, value.filename))
        elif name in TEXT_PARTS:
            if name in texts:
                errors.append(FieldError(name, "is given more than once"))
            texts[name] = await _text(value)
        else:
            known = ", ".join(sorted(TEXT_PARTS))
            errors.append(FieldError(name, f"unknown part; expected {known} or file:<field>"))
    model = texts.get("model", "").strip()
    if not model or len(model) > 200:
        errors.append(FieldError("model", "is required: a model id of 1-200 characters"))
    webhook, webhook_url = texts.get("webhook") or None, texts.get("webhook_url") or None
    if webhook and webhook_url and webhook != webhook_url:
        errors.append(FieldError("webhook_url", "conflicts with webhook"))
    req = SubmitRequest(
        model=model,
        input=_input(texts.get("input"), errors),
        is_public=_boolean(texts.get("is_public", ""), "is_public", errors),
        output_folder=texts.get("output_folder") or None,
        webhook_url=webhook or webhook_url,
        webhook_events=_events(texts.get("webhook_events", ""), errors),
        idempotency_key=idempotency_key,
        webhook_field="webhook" if webhook else "webhook_url",
        uploads=uploads,
    )
    if errors:
        raise invalid(errors)
    return req


@router.post(UPLOAD_PATH, status_code=201, openapi_extra=UPLOAD_BODY)
async def create_prediction_with_files(
    request: Request,
    services: ServicesDep,
    principal: Annotated[Principal, require(Scope.GENERATE)],
) -> JSON:
    settings = services.settings
    form = await read_form(request, settings.max_upload_bytes, settings.max_body_bytes)
    try:
        req = await submit_request(form, request.headers.get("idempotency-key"))
    finally:
        await form.close()
    return await submit_and_respond(request, services, principal, req)
