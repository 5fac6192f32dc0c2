"""``GET /api/tts``, ``POST /api/tts``, ``POST /api/stt``, ``POST /api/voice-clone``."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictStr
from starlette.responses import Response

from genyard.api.deps import PrincipalDep, ServicesDep, json_body
from genyard.api.responses import JSON
from genyard.api.simple import calls, languages, voices
from genyard.api.simple.forms import Form
from genyard.domain.validation import FieldError
from genyard.errors import InvalidRequest

router = APIRouter(tags=["simple"])
#: voice-clone's ``language`` values (the seed's: Korean | English | Chinese | Japanese).
CLONE_LANGUAGES = {"ko": "Korean", "en": "English", "zh": "Chinese", "ja": "Japanese"}
#: A placeholder for an uploaded file while an input is checked before its upload is.
_UPLOAD = "https://upload.invalid/file"


class TtsBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: StrictStr = Field(min_length=1)
    language: StrictStr | None = None
    speaker: StrictStr | None = None
    # Accepted and ignored: the local engines (piper, espeak-ng) take no style prompt.
    instruct: StrictStr | None = None
    style_instruction: StrictStr | None = None
    format: Literal["mp3", "wav", "ogg"] = "mp3"


def _blank(value: str | None) -> str | None:
    return value if value is not None and value.strip() else None


@router.get("/api/tts")
async def tts_speakers(services: ServicesDep, principal: PrincipalDep) -> JSON:
    return JSON(voices.speakers(services))


@router.post("/api/tts")
async def tts(request: Request, services: ServicesDep, principal: calls.GenerateDep) -> Response:
    body = await json_body(request, TtsBody)
    voice = voices.choose(services, body.text, _blank(body.language), _blank(body.speaker))
    props = voice.entry.input_schema.get("properties", {})
    input: dict[str, Any] = {"text": body.text}
    if voice.language is not None and "language" in props:
        input["language"] = voice.language
    if voice.speaker is not None:
        input["speaker"] = voice.speaker
    if "format" in props:
        input["format"] = body.format
    job = await calls.predict(services, principal, voice.entry, input, route="tts")
    return await calls.file_answer(services, job, "audio")


@router.post("/api/stt")
async def stt(request: Request, services: ServicesDep, principal: calls.GenerateDep) -> JSON:
    async with Form.parts(request, services) as form:
        upload = await form.file("file", "audio", "the audio to transcribe")
        language, task = form.text("language"), form.text("task")
        beam_size, vad_filter = form.integer("beam_size"), form.boolean("vad_filter")
    assert upload is not None
    code = None
    if language is not None and language.strip().lower() in ("auto", "detect"):
        language = None  # no model here detects the language: the default one reads it
    if language is not None:
        code = languages.normalize(language)
        if code is None:
            raise InvalidRequest(f"language: {language!r} is not a language code or name")
    entry = calls.default_model(services, "stt", code and code.split("-", 1)[0])
    props = entry.input_schema.get("properties", {})
    input: dict[str, Any] = {}
    if code is not None:
        value = languages.pick(code, set(props.get("language", {}).get("enum", [code])))
        if value is None:
            known = sorted({lang for e in services.catalog.all("stt") for lang in e.languages})
            raise InvalidRequest(
                f"language: no speech-to-text model reads {code!r} here; "
                f"languages: {', '.join(known)}"
            )
        input["language"] = value
    for name, given in (("task", task), ("beam_size", beam_size), ("vad_filter", vad_filter)):
        if given is not None and name in props:
            input[name] = given
    if task is not None and "task" not in props and task != "transcribe":
        raise InvalidRequest(f"task: {entry.id} can only transcribe, not {task!r}")
    job = await calls.predict(
        services, principal, entry, input, route="stt", uploads=[upload], rename={"audio": "file"}
    )
    return calls.json_answer(job, job.output)


@router.post("/api/voice-clone")
async def voice_clone(
    request: Request, services: ServicesDep, principal: calls.GenerateDep
) -> Response:
    async with Form.parts(request, services) as form:
        upload = await form.file("ref_audio", "ref_audio", "the reference voice recording")
        text, language = form.text("text"), form.text("language")
        x_vector_only, ref_text = form.boolean("x_vector_only_mode"), form.text("ref_text")
        if text is None:
            form.errors.append(FieldError("text", "is required: the text to speak"))
    assert upload is not None and text is not None
    input: dict[str, Any] = {"ref_audio": _UPLOAD, "text": text}
    if language is not None:
        code = languages.normalize(language)
        base = code.split("-", 1)[0] if code else None
        input["language"] = CLONE_LANGUAGES.get(base or "", language.strip().capitalize())
    if x_vector_only is not None:
        input["x_vector_only_mode"] = x_vector_only
    if ref_text is not None:
        input["ref_text"] = ref_text
    entry = calls.default_or(services, "voice-clone", "genyard/voice-clone", input)
    del input["ref_audio"]  # the upload fills it
    job = await calls.predict(
        services, principal, entry, input, route="voice-clone", uploads=[upload]
    )
    return await calls.file_answer(services, job, "audio")
