"""Sample inputs for the model benchmark: a catalog entry's ``example_input`` with every
file field (``x-genyard-file``) filled by a small generated file of an accepted type:
an image drawn with Pillow, speech from espeak-ng, a clip from ffmpeg's test sources."""

from __future__ import annotations

import io
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from genyard.domain.catalog import ModelEntry
from genyard.domain.validation import validate_input
from genyard.providers.base import InputFile

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."


def image_png(size: tuple[int, int] = (128, 128)) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", size)
    draw = ImageDraw.Draw(img)
    for y in range(size[1]):
        draw.line([(0, y), (size[0], y)], fill=(y * 2 % 256, 90, 255 - y * 2 % 256))
    draw.ellipse([size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1] * 3 // 4], fill="white")
    draw.text((8, 8), "genyard", fill="black")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def speech_wav(text: str = SENTENCE) -> bytes:
    return subprocess.run(
        ["espeak-ng", "--stdout", text], capture_output=True, check=True, timeout=60
    ).stdout


def clip_mp4(seconds: float = 2.0, size: str = "96x64") -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "clip.mp4"
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i",
             f"testsrc=duration={seconds}:size={size}:rate=24", "-f", "lavfi", "-i",
             f"sine=frequency=440:duration={seconds}", "-c:v", "libx264", "-pix_fmt",
             "yuv420p", "-c:a", "aac", "-shortest", str(out)],
            check=True, timeout=120,
        )  # fmt: skip
        return out.read_bytes()


def sample_file(accept: list[str]) -> InputFile:
    kinds = " ".join(accept)
    if "video" in kinds:
        return InputFile(clip_mp4(), "video/mp4", "clip.mp4", "bench:clip.mp4")
    if "audio" in kinds:
        return InputFile(speech_wav(), "audio/wav", "speech.wav", "bench:speech.wav")
    return InputFile(image_png(), "image/png", "image.png", "bench:image.png")


def sample_input(entry: ModelEntry) -> dict[str, Any]:
    """The entry's example input, defaults filled, file fields as generated files."""
    example = {k: v for k, v in entry.example_input.items() if k not in entry.files}
    filled, _ = validate_input(entry.input_schema, example)
    for name, field in entry.files.items():
        if name in entry.example_input or name in entry.input_schema.get("required", []):
            one = sample_file(list(field.spec.accept))
            filled[name] = [one] if field.many else one
    return filled
