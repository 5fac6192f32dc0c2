"""Music from a prompt: the algorithmic composer (composer.py) writes a MIDI file with
mido, fluidsynth renders it with the FluidR3 General MIDI soundfont, and the audio is
cut (or padded) to exactly ``audio_duration`` seconds, faded out, peak-normalised and
written as WAV or, through ffmpeg, MP3.

This is not a neural model: the prompt is read for tempo, key, metre, instrument and
mood or style words (music_words.py) and everything else is ignored. fluidsynth runs as
a child process (one core; the soundfont's samples are loaded on demand, so a run takes
about 50 MB); what the model cache keeps is the checked installation, and warming it
reads the soundfont once so its pages are in the OS cache for the first run.
"""

from __future__ import annotations

import importlib.util
import io
import math
import os
import secrets
import tempfile
import threading
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genyard.domain.catalog import ModelEntry
from genyard.errors import InvalidInput, ProviderError
from genyard.providers.base import Availability, OutputFile, ProviderResult, RunContext, SlotPlan
from genyard.providers.local.cli_tools import run_tool, which
from genyard.providers.runtime import model_cache

SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
INSTALL = "sudo apt-get install fluidsynth fluid-soundfont-gm ffmpeg"
GAIN = "0.5"  # fluidsynth's master gain: low enough never to clip; normalised after
PEAK = 0.89  # -1 dBFS
MAX_FADE_SECONDS = 2.5
CONTENT_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg"}


@dataclass(frozen=True, slots=True)
class Renderer:
    fluidsynth: str
    ffmpeg: str
    soundfont: str


def _soundfont(model: ModelEntry | None) -> str:
    if model is None:
        return SOUNDFONT
    return str(model.settings.get("soundfont", SOUNDFONT))


class ComposerProvider:
    def __init__(self) -> None:
        self._lock = threading.Lock()

    def availability(self) -> Availability:
        if importlib.util.find_spec("mido") is None:
            return Availability(
                False, "the mido package is not installed", "pip install 'mido>=1.3,<2'"
            )
        missing = [name for name in ("fluidsynth", "ffmpeg") if which(name) is None]
        if missing:
            return Availability(False, f"{' and '.join(missing)} not installed", INSTALL)
        if not os.path.isfile(SOUNDFONT):
            return Availability(
                False,
                f"the General MIDI soundfont {SOUNDFONT} is not installed",
                "sudo apt-get install fluid-soundfont-gm",
            )
        return Availability(True)

    def slot_plan(self, cores: int) -> SlotPlan:
        return SlotPlan(threads_per_call=1, parallel_calls=max(1, cores))

    def _load(self, soundfont: str) -> Renderer:
        fluidsynth, ffmpeg = which("fluidsynth"), which("ffmpeg")
        if fluidsynth is None or ffmpeg is None:
            raise ProviderError(f"fluidsynth and ffmpeg are needed: {INSTALL}")
        try:
            with open(soundfont, "rb") as f:  # into the OS page cache for the first run
                while f.read(1 << 20):
                    pass
        except OSError as exc:
            raise ProviderError(f"cannot read the soundfont {soundfont}: {exc}") from exc
        return Renderer(fluidsynth, ffmpeg, soundfont)

    def _use(self, model: ModelEntry) -> Any:
        soundfont = _soundfont(model)
        return model_cache().use(
            f"fluidsynth:{soundfont}",
            lambda: self._load(soundfont),
            memory_mb=model.limits.memory_mb,
        )

    def warm(self, model: ModelEntry) -> None:
        with self._use(model):
            pass

    def run(self, model: ModelEntry, input: dict[str, Any], ctx: RunContext) -> ProviderResult:
        from genyard.providers.local.composer import Composer, render_midi_bytes
        from genyard.providers.local.music_words import parse_prompt

        prompt = str(input["prompt"])
        duration = float(input.get("audio_duration", 10))
        if not 0 < duration <= float(model.capabilities.get("max_duration", 180)):
            raise InvalidInput(f"input.audio_duration: {duration:g} seconds is out of range")
        seed = input.get("seed")
        seed = int(seed) if seed is not None else secrets.randbelow(2**31)
        fmt = str(input.get("output_format", "wav"))
        if fmt not in CONTENT_TYPES:
            raise InvalidInput(f"input.output_format: {fmt!r} is not one of wav, mp3")
        rate = int(input.get("sample_rate", 44100))

        interp = parse_prompt(prompt)
        composer = Composer(interp, duration, seed)
        midi = render_midi_bytes(composer.midi())
        ctx.log(
            f"{interp.style.name}, {interp.key_name}, {interp.bpm} bpm, "
            f"{interp.beats_per_bar}/4, {composer.bars} bars, seed {seed}; understood: "
            + (", ".join(interp.understood) or "nothing (defaults)")
        )
        ctx.progress(10)
        with self._use(model) as renderer:
            pcm = render(renderer, midi, rate, ctx, model.limits.timeout)
            ctx.progress(70)
            pcm = fit(pcm, duration, rate)
            samples = pcm.shape[0]
            audio = encode(renderer, pcm, rate, fmt, ctx, model.limits.timeout)
        ctx.progress(100)
        seconds = samples / rate
        output: dict[str, Any] = {
            "audio": OutputFile(audio, CONTENT_TYPES[fmt], f"music.{fmt}"),
            "duration": round(seconds, 3),
            "sample_rate": rate,
            "seed": seed,
            "composition": {
                "style": interp.style.name,
                "mood": interp.mood.name if interp.mood else None,
                "bpm": interp.bpm,
                "key": interp.key_name,
                "time_signature": f"{interp.beats_per_bar}/4",
                "chords": list(interp.progression),
                "bars": composer.bars,
                "instruments": [
                    {
                        "name": p.instrument.name,
                        "program": p.instrument.program,
                        "role": p.role,
                        "channel": p.channel + 1,
                    }
                    for p in composer.parts
                ],
                "drums": interp.drums,
                "understood": list(interp.understood),
            },
        }
        if input.get("return_midi"):
            output["midi"] = OutputFile(midi, "audio/midi", "music.mid")
        return ProviderResult(output=output, usage={"seconds": seconds, "output_seconds": seconds})


def render(
    renderer: Renderer, midi: bytes, rate: int, ctx: RunContext, timeout: float
) -> np.ndarray[Any, np.dtype[np.int16]]:
    """fluidsynth's rendering of ``midi``: int16 samples, shape (frames, 2)."""
    with tempfile.TemporaryDirectory(prefix="genyard-music-") as tmp:
        source, target = Path(tmp) / "music.mid", Path(tmp) / "music.wav"
        source.write_bytes(midi)
        done = run_tool(
            [
                renderer.fluidsynth, "-n", "-i", "-q",
                "-o", "synth.dynamic-sample-loading=1", "-o", "synth.cpu-cores=1",
                "-r", str(rate), "-g", GAIN, "-T", "wav", "-O", "s16",
                "-F", str(target), renderer.soundfont, str(source),
            ],
            ctx=ctx,
            timeout=timeout,
        )  # fmt: skip
        if done.returncode != 0 or not target.exists():
            raise ProviderError(f"fluidsynth failed: {done.error_text}")
        try:
            with wave.open(str(target), "rb") as w:
                if w.getsampwidth() != 2:
                    raise ProviderError("fluidsynth wrote samples that are not 16-bit")
                channels = w.getnchannels()
                frames = w.readframes(w.getnframes())
        except (wave.Error, EOFError) as exc:
            raise ProviderError(f"fluidsynth wrote an unreadable WAV: {exc}") from exc
    pcm = np.frombuffer(frames, dtype="<i2").reshape(-1, channels)
    if channels == 1:
        pcm = np.repeat(pcm, 2, axis=1)
    return pcm[:, :2].astype(np.int16)


def fit(
    pcm: np.ndarray[Any, np.dtype[np.int16]], duration: float, rate: int
) -> np.ndarray[Any, np.dtype[np.int16]]:
    """Exactly ``duration`` seconds (cut or padded with silence), faded out over the
    last 15 % (at most 2.5 s) and peak-normalised to -1 dBFS. Works in place on one
    float32 copy (a 180 s clip takes about 64 MB while it is fitted)."""
    frames = max(1, round(duration * rate))
    audio = np.zeros((frames, 2), dtype=np.float32)
    take = min(frames, pcm.shape[0])
    audio[:take] = pcm[:take]
    fade = min(frames, round(min(MAX_FADE_SECONDS, 0.15 * duration) * rate))
    if fade > 1:
        ramp = (0.5 * (1 + np.cos(np.linspace(0, math.pi, fade)))).astype(np.float32)
        audio[-fade:] *= ramp[:, None]
    peak = max(float(audio.max()), -float(audio.min()))
    if peak > 0:
        audio *= np.float32(min(16.0, PEAK * 32767 / peak))
    np.rint(audio, out=audio)
    np.clip(audio, -32768, 32767, out=audio)
    return audio.astype(np.int16)


def encode(
    renderer: Renderer,
    pcm: np.ndarray[Any, np.dtype[np.int16]],
    rate: int,
    fmt: str,
    ctx: RunContext,
    timeout: float,
) -> bytes:
    raw = pcm.astype("<i2").tobytes()
    if fmt == "wav":
        out = io.BytesIO()
        with wave.open(out, "wb") as w:
            w.setnchannels(2)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(raw)
        return out.getvalue()
    done = run_tool(
        [
            renderer.ffmpeg, "-hide_banner", "-loglevel", "error",
            "-f", "s16le", "-ar", str(rate), "-ac", "2", "-i", "pipe:0",
            "-c:a", "libmp3lame", "-b:a", "192k", "-f", "mp3", "pipe:1",
        ],
        ctx=ctx,
        stdin=raw,
        timeout=timeout,
    )  # fmt: skip
    if done.returncode != 0 or not done.stdout:
        raise ProviderError(f"ffmpeg could not encode mp3: {done.error_text}")
    return done.stdout
