"""Video upscaling: ffmpeg decodes, Real-ESRGAN upscales every frame, ffmpeg encodes.

The pipeline, for one ``video`` input (any container ffmpeg reads; mp4 out):

1. ``ffprobe`` reads the size, frame rate, frame count, duration and audio codec; an
   unreadable file, or none with a video stream, fails with ``invalid_input``, and so
   does one over the entry's ``capabilities`` limits (``max_duration_seconds``,
   ``max_frames``, ``max_input_pixels`` per frame, ``max_total_pixels`` over all
   frames: the CPU time is about proportional to it);
2. ``ffmpeg`` decodes to raw RGB24 on a pipe, at a constant frame rate (the input's
   average: a variable-rate input keeps its duration and sync, not its exact timing);
   rotation metadata is applied to the frames;
3. each frame goes through the engine process (animevideov3 at the asked scale: a
   small network, about 0.05 s for a 96x64 frame and 1 s for 320x180 here); the next
   frame is handed over while the previous one is written to the encoder;
4. ``ffmpeg`` encodes H.264 (libx264, CRF 18, yuv420p: sizes rounded down to even)
   at the same frame rate, with the input's first audio stream copied (AAC, MP3, AC-3,
   ALAC) or re-encoded to AAC.

Progress goes 0-99 over the frames and 100 once the file is written; a log line
``frame 10/48, ~12 s left`` at the first frame and at most every 5 seconds after.
``ctx.canceled`` is checked at every frame (and while the engine works). The usage is
the input's duration in seconds, which the per-second price bills.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

from genyard.domain.catalog import ModelEntry
from genyard.errors import InvalidInput, ProviderError
from genyard.providers.base import (
    Availability,
    OutputFile,
    ProviderResult,
    RunContext,
    SlotPlan,
    input_file,
)
from genyard.providers.local.realesrgan import (
    default_scale,
    engine_availability,
    engine_slot_plan,
    weights_for,
)
from genyard.providers.local.realesrgan_engine import Canceled, EngineProcess, engine

FFMPEG_FIX = "sudo apt-get install --no-install-recommends ffmpeg"
COPY_AUDIO = frozenset({"aac", "mp3", "ac3", "eac3", "alac"})
#: Input options for the user's file: local file only and the mp4/mov and Matroska/WebM
#: demuxers only, so a "video" that is really a playlist (HLS, concat) cannot make
#: ffmpeg open other files or URLs.
SAFE_INPUT = ("-protocol_whitelist", "file", "-format_whitelist", "mov,matroska")
LOG_EVERY = 5.0
PROBE_TIMEOUT = 60
ENCODE_TIMEOUT = 600


@dataclass(frozen=True, slots=True)
class VideoInfo:
    width: int
    height: int
    fps: Fraction
    frames: int
    duration: float
    audio: str | None
    sample_aspect: str | None = None

    def describe(self) -> str:
        audio = f"audio {self.audio}" if self.audio else "no audio"
        return (
            f"{self.width}x{self.height}, {float(self.fps):.3g} fps, {self.frames} frames, "
            f"{self.duration:.2f} s, {audio}"
        )


class RealEsrganVideoProvider:
    """``upscale`` video models: ``{"video", "scale"}`` to ``{"video", "width", "height",
    "duration"}``."""

    def availability(self) -> Availability:
        found = engine_availability()
        if not found.available:
            return found
        for tool in ("ffmpeg", "ffprobe"):
            if shutil.which(tool) is None:
                return Availability(False, f"{tool} is not installed", FFMPEG_FIX)
        return Availability(True)

    def slot_plan(self, cores: int) -> SlotPlan:
        return engine_slot_plan(cores)

    def warm(self, model: ModelEntry) -> None:
        with engine(weights_for(model, default_scale(model)), model.limits.memory_mb):
            pass

    def run(self, model: ModelEntry, input: dict[str, Any], ctx: RunContext) -> ProviderResult:
        file = input_file(input, "video", "a video file")
        scale = int(input.get("scale", 2))
        weights = weights_for(model, scale)
        with tempfile.TemporaryDirectory(prefix="genyard-video-") as tmp:
            source = Path(tmp) / "input"
            source.write_bytes(file.data)
            info = probe(source)
            check_limits(info, model.capabilities)
            ctx.log(f"input: {info.describe()}")
            target = Path(tmp) / "output.mp4"
            with engine(weights, model.limits.memory_mb) as process:
                frames = transcode(source, target, info, process, scale, ctx, Path(tmp))
            out = probe(target, what="the upscaled video")
            ctx.progress(100)
            ctx.log(f"output: {out.width}x{out.height}, {frames} frames, {out.duration:.2f} s")
            data = target.read_bytes()
        name = f"{Path(file.filename or 'video').stem[:80] or 'video'}-x{scale}.mp4"
        return ProviderResult(
            output={
                "video": OutputFile(data, "video/mp4", name),
                "width": out.width,
                "height": out.height,
                "duration": round(out.duration, 3),
            },
            usage={"seconds": round(info.duration, 3)},
        )


def probe(path: Path, what: str = "input.video") -> VideoInfo:
    """What ffprobe says about a video file; InvalidInput when it cannot be read."""
    try:
        done = subprocess.run(  # noqa: S603
            [
                tool("ffprobe"), "-v", "error", *SAFE_INPUT, "-print_format", "json",
                "-show_format", "-show_streams", str(path),
            ],
            capture_output=True,
            timeout=PROBE_TIMEOUT,
            check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise InvalidInput(f"{what} could not be read in {PROBE_TIMEOUT} s") from exc
    if done.returncode != 0:
        raise InvalidInput(
            f"{what} is not a readable video (mp4, mov, webm or mkv): {_last_line(done.stderr)}"
        )
    try:
        data = json.loads(done.stdout)
    except ValueError as exc:
        raise InvalidInput(f"{what} is not a readable video") from exc
    streams = data.get("streams") or []
    video = next(
        (
            s
            for s in streams
            if s.get("codec_type") == "video"
            and not (s.get("disposition") or {}).get("attached_pic")
        ),
        None,
    )
    if video is None:
        raise InvalidInput(f"{what} has no video stream")
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    if width < 1 or height < 1:
        raise InvalidInput(f"{what} has no frame size")
    if _rotation(video) % 180 == 90:
        width, height = height, width
    fps = _rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate"))
    if fps is None:
        raise InvalidInput(f"{what} has no frame rate")
    duration = _float((data.get("format") or {}).get("duration")) or _float(video.get("duration"))
    if duration is None or duration <= 0:
        raise InvalidInput(f"{what} has no duration")
    frames = _int(video.get("nb_frames")) or max(1, round(duration * fps))
    sar = video.get("sample_aspect_ratio")
    return VideoInfo(
        width=width,
        height=height,
        fps=fps,
        frames=frames,
        duration=duration,
        audio=str(audio.get("codec_name") or "unknown") if audio else None,
        sample_aspect=sar if sar and sar not in ("1:1", "0:1", "N/A") else None,
    )


def check_limits(info: VideoInfo, capabilities: dict[str, Any]) -> None:
    """InvalidInput when the video is over one of the entry's limits."""
    max_seconds = capabilities.get("max_duration_seconds")
    if max_seconds is not None and info.duration > float(max_seconds) + 0.5:
        raise InvalidInput(
            f"input.video is {info.duration:.1f} s long; this model takes at most {max_seconds} s"
        )
    max_frames = capabilities.get("max_frames")
    if max_frames is not None and info.frames > int(max_frames):
        raise InvalidInput(
            f"input.video has {info.frames} frames; this model takes at most {max_frames}"
        )
    area = info.width * info.height
    max_pixels = capabilities.get("max_input_pixels")
    if max_pixels is not None and area > int(max_pixels):
        raise InvalidInput(
            f"input.video is {info.width}x{info.height} ({area:,} pixels a frame); "
            f"this model takes at most {int(max_pixels):,} pixels a frame"
        )
    max_total = capabilities.get("max_total_pixels")
    if max_total is not None and area * info.frames > int(max_total):
        raise InvalidInput(
            f"input.video is {info.frames} frames of {info.width}x{info.height} "
            f"({area * info.frames:,} pixels in all); this model takes at most "
            f"{int(max_total):,} (the CPU time grows with frames x area)"
        )


def transcode(
    source: Path,
    target: Path,
    info: VideoInfo,
    process: EngineProcess,
    scale: int,
    ctx: RunContext,
    tmp: Path,
) -> int:
    """Decode, upscale frame by frame, encode; returns the number of frames written."""
    from PIL import Image

    native = process.weights.scale
    out_w, out_h = info.width * scale, info.height * scale
    frame_bytes = info.width * info.height * 3
    with (
        (tmp / "decode.log").open("w+b") as decode_log,
        (tmp / "encode.log").open("w+b") as encode_log,
    ):
        decoder = subprocess.Popen(  # noqa: S603
            decode_command(source, info),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=decode_log,
        )
        encoder = subprocess.Popen(  # noqa: S603
            encode_command(source, target, info, out_w, out_h),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=encode_log,
        )
        assert decoder.stdout is not None and encoder.stdin is not None
        done = 0
        started = last_log = time.monotonic()
        pending: bytes | None = None
        try:
            while True:
                if ctx.canceled:
                    raise Canceled()
                frame = decoder.stdout.read(frame_bytes)
                if len(frame) < frame_bytes:
                    break
                process.send(frame, info.width, info.height)
                if pending is not None:
                    _feed(encoder.stdin, pending, encode_log)
                pending = process.receive(ctx.cancel_event)
                if native != scale:
                    pending = (
                        Image.frombytes("RGB", (info.width * native, info.height * native), pending)
                        .resize((out_w, out_h), Image.Resampling.LANCZOS)
                        .tobytes()
                    )
                done += 1
                total = max(info.frames, done)
                ctx.progress(min(99, 100 * done / total))
                now = time.monotonic()
                if done == 1 or now - last_log >= LOG_EVERY or done == info.frames:
                    left = (now - started) / done * (total - done)
                    ctx.log(f"frame {done}/{total}, ~{left:.0f} s left")
                    last_log = now
            if pending is not None:
                _feed(encoder.stdin, pending, encode_log)
            encoder.stdin.close()
            decoder.stdout.close()
            decoded = decoder.wait(timeout=ENCODE_TIMEOUT)
            encoded = encoder.wait(timeout=ENCODE_TIMEOUT)
        finally:
            for proc in (decoder, encoder):
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        if decoded != 0 or done == 0:
            raise InvalidInput(f"input.video could not be decoded: {_tail(decode_log)}")
        if encoded != 0:
            raise ProviderError(f"ffmpeg could not encode the upscaled video: {_tail(encode_log)}")
    return done


def decode_command(source: Path, info: VideoInfo) -> list[str]:
    return [
        tool("ffmpeg"), "-nostdin", "-v", "error", "-threads", "1", *SAFE_INPUT, "-i", str(source),
        "-map", "0:v:0", "-an", "-sn", "-dn",
        "-fps_mode", "cfr", "-r", _rate_arg(info.fps),
        "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
    ]  # fmt: skip


def encode_command(
    source: Path, target: Path, info: VideoInfo, width: int, height: int
) -> list[str]:
    filters = "crop=trunc(iw/2)*2:trunc(ih/2)*2"
    if info.sample_aspect:
        filters += f",setsar={info.sample_aspect.replace(':', '/')}"
    audio = ["-c:a", "copy"] if info.audio in COPY_AUDIO else ["-c:a", "aac", "-b:a", "160k"]
    return [
        tool("ffmpeg"), "-nostdin", "-v", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
        "-framerate", _rate_arg(info.fps), "-i", "pipe:0",
        *SAFE_INPUT, "-i", str(source),
        "-map", "0:v:0", "-map", "1:a:0?", "-vf", filters,
        "-c:v", "libx264", "-preset", "medium", "-crf", "18", "-pix_fmt", "yuv420p",
        "-threads", "1", *audio, "-movflags", "+faststart", str(target),
    ]  # fmt: skip


def tool(name: str) -> str:
    """The full path of ffmpeg or ffprobe."""
    path = shutil.which(name)
    if path is None:
        raise ProviderError(f"{name} is not installed ({FFMPEG_FIX})")
    return path


def _feed(stdin: IO[bytes], frame: bytes, log: IO[bytes]) -> None:
    try:
        stdin.write(frame)
    except OSError as exc:
        raise ProviderError(f"ffmpeg stopped encoding: {_tail(log)}") from exc


def _rotation(stream: dict[str, Any]) -> int:
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            return int(_float(side["rotation"]) or 0)
    return int(_float((stream.get("tags") or {}).get("rotate")) or 0)


def _rate(value: Any) -> Fraction | None:
    try:
        rate = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        return None
    return rate if rate > 0 else None


def _rate_arg(rate: Fraction) -> str:
    return f"{rate.numerator}/{rate.denominator}"


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _last_line(data: bytes) -> str:
    lines = data.decode(errors="replace").strip().splitlines()
    return lines[-1][:300] if lines else "no details"


def _tail(log: IO[bytes]) -> str:
    log.flush()
    log.seek(0)
    return _last_line(log.read())
