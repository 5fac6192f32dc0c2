"""Text-to-speech with the espeak-ng binary (Debian ``espeak-ng``): formant synthesis.

Robotic but intelligible, instant, and in about a hundred languages, Korean included.
The catalog entry's ``capabilities.voices`` lists the ``language`` codes it offers,
each with its espeak-ng voice (``zh`` -> ``cmn``); ``speaker`` picks one of
``capabilities.speakers``, espeak-ng voice variants (``m3``, ``f2``, ``klatt``...).
Each run is one short-lived process (text on stdin, a wav file out), so runs are
independent and parallel.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import Any

from genyard.domain.catalog import ModelEntry
from genyard.errors import InvalidInput, ProviderError
from genyard.providers.base import Availability, ProviderResult, RunContext, SlotPlan
from genyard.providers.local import audio

ESPEAK = "espeak-ng"
ESPEAK_FIX = "sudo apt-get install espeak-ng"
DEFAULT_WPM = 175  # espeak-ng's own default rate
MIN_WPM, MAX_WPM = 80, 450
TIMEOUT = 120.0


def words_per_minute(speed: float) -> int:
    """``speed`` (1 = espeak-ng's 175 words a minute) as espeak-ng's ``-s`` rate."""
    return max(MIN_WPM, min(MAX_WPM, round(DEFAULT_WPM * speed)))


def voice_table(model: ModelEntry) -> dict[str, str]:
    """``language`` code -> espeak-ng voice, from the entry's ``capabilities.voices``."""
    return {str(v["id"]): str(v["espeak_voice"]) for v in model.capabilities.get("voices", [])}


def installed_voices() -> set[str]:
    """The language voices this espeak-ng has (``espeak-ng --voices``)."""
    listing = subprocess.run(  # noqa: S603
        [ESPEAK, "--voices"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    return {line.split()[1] for line in listing.splitlines()[1:] if len(line.split()) > 1}


class EspeakProvider:
    def availability(self) -> Availability:
        if shutil.which(ESPEAK) is None:
            return Availability(False, "the espeak-ng binary is not installed", ESPEAK_FIX)
        return audio.ffmpeg_availability()

    def slot_plan(self, cores: int) -> SlotPlan:
        return SlotPlan(threads_per_call=1, parallel_calls=max(1, min(2, cores)))

    def run(self, model: ModelEntry, input: dict[str, Any], ctx: RunContext) -> ProviderResult:
        text, fmt = audio.speech_request(input)
        voices = voice_table(model)
        language = str(input.get("language", "en"))
        if language not in voices:
            raise InvalidInput(f"input.language must be one of {', '.join(sorted(voices))}")
        voice = voices[language]
        speaker = str(input.get("speaker") or "default")
        if speaker != "default":
            variants = [str(v) for v in model.capabilities.get("speakers", [])]
            if speaker not in variants:
                raise InvalidInput(f"input.speaker must be one of {', '.join(variants)}")
            voice = f"{voice}+{speaker}"
        wpm = words_per_minute(float(input.get("speed", 1.0)))
        pitch = int(input.get("pitch", 50))
        pcm, sample_rate = self._speak(text, voice, wpm, pitch)
        return audio.speech_result(
            pcm, sample_rate, fmt, text, ctx, f"espeak-ng -v {voice} -s {wpm}"
        )

    @staticmethod
    def _speak(text: str, voice: str, wpm: int, pitch: int) -> tuple[bytes, int]:
        with tempfile.TemporaryDirectory(prefix="genyard-espeak-") as tmp:
            out = Path(tmp) / "speech.wav"
            try:
                result = subprocess.run(  # noqa: S603 (fixed program; text goes on stdin)
                    [ESPEAK, "-b", "1", "-v", voice, "-s", str(wpm), "-p", str(pitch),
                     "-w", str(out), "--stdin"],
                    input=text.encode("utf-8"),
                    capture_output=True,
                    timeout=TIMEOUT,
                    check=False,
                )  # fmt: skip
            except FileNotFoundError as exc:
                raise ProviderError(f"espeak-ng is not installed ({ESPEAK_FIX})") from exc
            except subprocess.TimeoutExpired as exc:
                raise ProviderError(f"espeak-ng took longer than {TIMEOUT:.0f} s") from exc
            complaint = result.stderr.decode("utf-8", "replace").strip()
            if result.returncode != 0 or not out.exists() or "does not exist" in complaint:
                raise ProviderError(f"espeak-ng failed for voice {voice}: {complaint[:300]}")
            try:
                with wave.open(str(out), "rb") as wav:
                    if wav.getnchannels() != 1 or wav.getsampwidth() != audio.SAMPLE_WIDTH:
                        raise ProviderError("espeak-ng wrote an unexpected wav layout")
                    return wav.readframes(wav.getnframes()), wav.getframerate()
            except (wave.Error, EOFError) as exc:
                raise ProviderError(f"espeak-ng wrote an unreadable wav: {exc}") from exc
