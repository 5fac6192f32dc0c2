"""``POST /llm/openai/v1/audio/speech`` and ``POST /llm/openai/v1/audio/transcriptions``.

Speech: ``model`` (a speech model, or OpenAI's ``tts-1``, ``tts-1-hd`` and
``gpt-4o-mini-tts`` as aliases of the catalog's default speech model), ``input`` (the
text), ``voice`` (one of the model's speakers, or any OpenAI voice name for the model's
default speaker), ``response_format`` (``mp3``, the default, ``wav``, or ``opus``,
which here is Ogg *Vorbis*, ``audio/ogg``; ``ogg`` means the same), ``speed``, and
genyard's ``language`` (espeak-ng's voice). ``instructions`` is ignored. The answer
is the audio's bytes with their content type.

Transcriptions (multipart): ``file``, ``model`` (an STT model, or ``whisper-1``,
``gpt-4o-transcribe`` and ``gpt-4o-mini-transcribe`` as aliases of the default STT
model for ``language``), ``language``, ``prompt`` and ``temperature`` (passed where the
model takes them, else ignored), ``timestamp_granularities[]`` (``word`` adds words),
``response_format`` ``json`` (default), ``text``, ``verbose_json``, ``srt`` or ``vtt``.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.datastructures import UploadFile
from starlette.responses import Response

from genyard.api import face_calls
from genyard.api.deps import ServicesDep, json_body
from genyard.api.native.upload import read_form
from genyard.api.openai.common import Generate, find_model
from genyard.api.openai.errors import bad_param
from genyard.api.openai.subtitles import LANGUAGE_NAMES, srt, vtt
from genyard.api.responses import JSON
from genyard.domain.catalog import ModelEntry
from genyard.domain.files import UploadedFile
from genyard.services.container import Services

router = APIRouter(tags=["openai"])

SPEECH_ALIASES = frozenset({"tts-1", "tts-1-hd", "gpt-4o-mini-tts"})
STT_ALIASES = frozenset({"whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"})
OPENAI_VOICES = frozenset(
    {"alloy", "ash", "ballad", "cedar", "coral", "echo", "fable", "marin", "nova", "onyx"}
    | {"sage", "shimmer", "verse"}
)
SPEECH_FORMATS = {"mp3": "mp3", "wav": "wav", "opus": "ogg", "ogg": "ogg"}
TRANSCRIPT_FORMATS = ("json", "text", "verbose_json", "srt", "vtt")


def _model(services: Services, model: str, kind: str, language: str | None) -> ModelEntry:
    aliases = SPEECH_ALIASES if kind == "speech" else STT_ALIASES
    if model in aliases:
        default = services.catalog.default_for(kind, language)
        if default is not None:
            model = default.id
    return find_model(services, model, kind)


class SpeechRequest(BaseModel):
    model: str
    input: str
    voice: str | None = None
    response_format: str | None = None
    speed: float | None = None
    language: str | None = None


def speech_input(entry: ModelEntry, body: SpeechRequest) -> dict[str, Any]:
    fmt = SPEECH_FORMATS.get(body.response_format or "mp3")
    if fmt is None or fmt not in entry.capabilities.get("formats", [fmt]):
        raise bad_param(
            "response_format",
            f"{body.response_format!r} is not supported: use mp3, wav or opus (Ogg Vorbis)",
        )
    input: dict[str, Any] = {"text": body.input, "format": fmt}
    speakers = entry.input_schema.get("properties", {}).get("speaker", {}).get("enum", [])
    if body.voice is not None and body.voice not in OPENAI_VOICES:
        if body.voice not in speakers:
            raise bad_param(
                "voice",
                f"{entry.id} has no voice {body.voice!r}: use one of {', '.join(speakers)} "
                "(or an OpenAI voice name for the default one)",
            )
        input["speaker"] = body.voice
    if body.speed is not None:
        input["speed"] = body.speed
    if body.language is not None:
        input["language"] = body.language
    return input


@router.post("/llm/openai/v1/audio/speech")
async def create_speech(request: Request, services: ServicesDep, principal: Generate) -> Response:
    body = await json_body(request, SpeechRequest)
    entry = _model(services, body.model, "speech", body.language)
    names = {"text": "input", "speaker": "voice", "format": "response_format"}
    input = speech_input(entry, body)
    job = await face_calls.run(services, principal, entry.id, input, names=names)
    audio = await face_calls.output_file(services, job, "audio")
    return Response(
        audio.data, media_type=audio.content_type, headers={"x-genyard-prediction-id": job.id}
    )


async def _text_part(form: Any, name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if isinstance(value, UploadFile):
        return (await value.read()).decode("utf-8", errors="replace").strip()
    return str(value).strip()


def transcription_input(entry: ModelEntry, parts: dict[str, Any]) -> dict[str, Any]:
    props = entry.input_schema.get("properties", {})
    input: dict[str, Any] = {}
    if parts.get("language"):
        input["language"] = parts["language"]
    if parts.get("prompt") and "prompt" in props:
        input["prompt"] = parts["prompt"]
    if parts.get("temperature") and "temperature" in props:
        try:
            input["temperature"] = float(parts["temperature"])
        except ValueError:
            raise bad_param("temperature", "must be a number") from None
    if "word" in parts["granularities"]:
        if "word_timestamps" in props:
            input["word_timestamps"] = True
        elif "words" in props:
            input["words"] = True
    return input


def transcript(job_output: Any, fmt: str, granularities: list[str]) -> Response:
    output = job_output if isinstance(job_output, dict) else {}
    text = str(output.get("text", ""))
    segments = output.get("segments") or []
    duration = float(output.get("duration") or 0)
    usage = {"type": "duration", "seconds": math.ceil(duration)}
    if fmt == "text":
        return Response(text + "\n", media_type="text/plain; charset=utf-8")
    if fmt == "srt":
        return Response(srt(segments), media_type="text/plain; charset=utf-8")
    if fmt == "vtt":
        return Response(vtt(segments), media_type="text/vtt; charset=utf-8")
    if fmt == "json":
        return JSON({"text": text, "usage": usage})
    language = str(output.get("language") or "")
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": LANGUAGE_NAMES.get(language, language),
        "duration": duration,
        "text": text,
        "segments": [{k: s.get(k) for k in ("id", "start", "end", "text")} for s in segments],
        "usage": usage,
    }
    if "word" in granularities:
        body["words"] = [w for s in segments for w in s.get("words") or []]
    return JSON(body)


@router.post("/llm/openai/v1/audio/transcriptions")
async def create_transcription(
    request: Request, services: ServicesDep, principal: Generate
) -> Response:
    settings = services.settings
    form = await read_form(request, settings.max_upload_bytes, settings.max_body_bytes)
    try:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise bad_param("file", "is required: the audio file, as a multipart file part")
        parts: dict[str, Any] = {
            name: await _text_part(form, name)
            for name in ("model", "language", "prompt", "temperature", "response_format")
        }
        parts["granularities"] = [
            str(v) for v in form.getlist("timestamp_granularities[]") if isinstance(v, str)
        ]
        if (await _text_part(form, "stream") or "false").lower() == "true":
            raise bad_param("stream", "streamed transcription is not supported")
        upload = UploadedFile("audio", await file.read(), file.content_type, file.filename)
    finally:
        await form.close()
    if not parts["model"]:
        raise bad_param("model", "is required")
    fmt = parts["response_format"] or "json"
    if fmt not in TRANSCRIPT_FORMATS:
        raise bad_param("response_format", f"must be one of {', '.join(TRANSCRIPT_FORMATS)}")
    entry = _model(services, parts["model"], "stt", parts["language"])
    input = transcription_input(entry, parts)
    job = await face_calls.run(
        services, principal, entry.id, input, names={"audio": "file"}, uploads=[upload]
    )
    response = transcript(job.output, fmt, parts["granularities"])
    response.headers["x-genyard-prediction-id"] = job.id
    return response
