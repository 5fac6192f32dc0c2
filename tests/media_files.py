"""Media files the tests make with Debian's ffmpeg."""

from __future__ import annotations

import subprocess
from pathlib import Path


def make_clip(path: Path, *, size: str = "96x64", rate: int = 12, seconds: float = 1.5) -> Path:
    """An H.264 + AAC mp4 from ffmpeg's test source and a sine tone."""
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
            "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path),
        ],
        check=True,
    )  # fmt: skip
    return path
