"""Audio in and out for the speech providers, through the ffmpeg binary (Debian ``ffmpeg``).

- :func:`decode` turns any audio ffmpeg reads (wav, mp3, m4a/aac, ogg/vorbis/opus, webm,
  flac, the audio track of an mp4...) into 16-bit mono PCM at the asked rate: the
  speech-to-text engines' input. A file ffmpeg cannot read, or one without audio,
  raises :class:`~genyard.errors.InvalidInput` (the job fails ``invalid_input``).
- :func:`encode` turns 16-bit mono PCM into wav (written here, no ffmpeg), mp3 (LAME) or
  ogg (Vorbis): the text-to-speech engines' output.

ffmpeg runs as a subprocess on temporary files (an m4a's index may sit at its end, so
reading from a pipe is not enough; an mp3 written to a file gets its frame count in
its header), with a time limit.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genyard.errors import InvalidInput, ProviderError
from genyard.providers.base import Availability, OutputFile, ProviderResult, RunContext

FFMPEG = "ffmpeg"
FFMPEG_FIX = "sudo apt-get install ffmpeg"
#: Seconds one ffmpeg call may take before the run fails.
FFMPEG_TIMEOUT = 300.0
SAMPLE_WIDTH = 2  # bytes: signed 16-bit little-endian


@dataclass(frozen=True, slots=True)
class OutputFormat:
    content_type: str
    extension: str
    codec_args: tuple[str, ...]  # ffmpeg's encoder arguments; () for wav (no ffmpeg)


#: The formats :func:`encode` writes (the ``format`` enum of the speech models).
FORMATS: dict[str, OutputFormat] = {
    "wav": OutputFormat("audio/wav", "wav", ()),
    "mp3": OutputFormat("audio/mpeg", "mp3", ("-c:a", "libmp3lame", "-b:a", "64k")),
    "ogg": OutputFormat("audio/ogg", "ogg", ("-c:a", "libvorbis", "-q:a", "4")),
}


def speech_request(input: Mapping[str, Any]) -> tuple[str, str]:
    """A text-to-speech input's ``text`` (not blank) and output ``format``."""
    text = str(input.get("text", ""))
    if not text.strip():
        raise InvalidInput("input.text has nothing to speak")
    fmt = str(input.get("format", "wav"))
    if fmt not in FORMATS:
        raise InvalidInput(f"input.format must be one of {', '.join(FORMATS)}")
    return text, fmt


def ffmpeg_availability() -> Availability:
    if shutil.which(FFMPEG) is None:
        return Availability(False, "the ffmpeg binary is not installed", FFMPEG_FIX)
    return Availability(True)


def _ffmpeg(args: list[str], what: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(  # noqa: S603 (fixed program, arguments built here)
            [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", *args],
            capture_output=True,
            timeout=FFMPEG_TIMEOUT,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ProviderError(f"ffmpeg is not installed ({FFMPEG_FIX})") from exc
    except subprocess.TimeoutExpired as exc:
        raise ProviderError(f"ffmpeg took longer than {FFMPEG_TIMEOUT:.0f} s {what}") from exc


def _reason(stderr: bytes, path: Path) -> str:
    """ffmpeg's last complaint, without the temporary path it names."""
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    if not lines:
        return "ffmpeg could not read it"
    last = lines[-1].replace(f"{path}: ", "").replace(str(path), "the file")
    return last.replace(str(path.parent), "")[:300]


def decode(data: bytes, *, sample_rate: int = 16000, max_seconds: float | None = None) -> bytes:
    """The first audio stream of ``data`` as 16-bit mono PCM at ``sample_rate``.

    Raises :class:`InvalidInput` when ffmpeg cannot read it, it has no audio, or it is
    longer than ``max_seconds``.
    """
    if not data:
        raise InvalidInput("the audio file is empty")
    with tempfile.TemporaryDirectory(prefix="genyard-audio-") as tmp:
        path = Path(tmp) / "input"
        path.write_bytes(data)
        limit = [] if max_seconds is None else ["-t", f"{max_seconds + 1:.3f}"]
        result = _ffmpeg(
            ["-i", str(path), "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(sample_rate),
             *limit, "-f", "s16le", "-c:a", "pcm_s16le", "pipe:1"],
            "to decode the audio",
        )  # fmt: skip
        if result.returncode != 0:
            reason = _reason(result.stderr, path)
            if "matches no streams" in reason:
                reason = "the file has no audio stream"
            raise InvalidInput(f"the audio could not be decoded: {reason}")
    pcm = result.stdout[: len(result.stdout) - len(result.stdout) % SAMPLE_WIDTH]
    if not pcm:
        raise InvalidInput("the audio file holds no samples")
    seconds = duration(pcm, sample_rate)
    if max_seconds is not None and seconds > max_seconds:
        raise InvalidInput(f"the audio is longer than this model's limit of {max_seconds:g} s")
    return pcm


def duration(pcm: bytes, sample_rate: int) -> float:
    """Seconds of 16-bit mono PCM."""
    return len(pcm) / SAMPLE_WIDTH / sample_rate


def to_float32(pcm: bytes) -> np.ndarray:
    """16-bit PCM as float32 samples in [-1, 1) (what whisper takes)."""
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def to_wav(pcm: bytes, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(SAMPLE_WIDTH)
        out.setframerate(sample_rate)
        out.writeframes(pcm)
    return buffer.getvalue()


def encode(pcm: bytes, sample_rate: int, fmt: str) -> bytes:
    """16-bit mono PCM at ``sample_rate`` as a ``wav``, ``mp3`` or ``ogg`` file."""
    spec = FORMATS.get(fmt)
    if spec is None:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not spec.codec_args:
        return to_wav(pcm, sample_rate)
    with tempfile.TemporaryDirectory(prefix="genyard-audio-") as tmp:
        source = Path(tmp) / "input.pcm"
        target = Path(tmp) / f"output.{spec.extension}"
        source.write_bytes(pcm)
        result = _ffmpeg(
            ["-f", "s16le", "-ar", str(sample_rate), "-ac", "1", "-i", str(source),
             *spec.codec_args, str(target)],
            f"to encode {fmt}",
        )  # fmt: skip
        if result.returncode != 0:
            raise ProviderError(f"ffmpeg could not encode {fmt}: {_reason(result.stderr, source)}")
        return target.read_bytes()


def output_file(pcm: bytes, sample_rate: int, fmt: str, stem: str = "speech") -> OutputFile:
    """The encoded audio as an output file (``speech.mp3``, ``audio/mpeg``)."""
    data = encode(pcm, sample_rate, fmt)  # refuses an unknown format
    spec = FORMATS[fmt]
    return OutputFile(data, spec.content_type, f"{stem}.{spec.extension}")


def speech_result(
    pcm: bytes, sample_rate: int, fmt: str, text: str, ctx: RunContext, how: str
) -> ProviderResult:
    """A text-to-speech run's result: the audio file, its duration and sample rate, and
    usage in characters; ``how`` (what the engine did) is logged with the duration."""
    if not pcm:
        raise InvalidInput("input.text has nothing to speak")
    seconds = round(duration(pcm, sample_rate), 3)
    ctx.log(f"{how}: {seconds:.2f} s")
    return ProviderResult(
        output={
            "audio": output_file(pcm, sample_rate, fmt),
            "duration": seconds,
            "sample_rate": sample_rate,
        },
        usage={"characters": len(text)},
    )
