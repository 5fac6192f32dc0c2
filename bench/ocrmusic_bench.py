"""Load time, latency, 8-caller throughput and peak RSS of the OCR and music providers.

    .venv/bin/python bench/ocrmusic_bench.py [--runs 5] [--callers 8]

Calls the providers directly (as a worker thread would), with the bundled catalog
entries. Peak RSS is reported for this process and for the largest child process
(tesseract, fluidsynth, ffmpeg), from getrusage.
"""

from __future__ import annotations

import argparse
import io
import resource
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from genyard.domain.catalog import BUNDLED_CATALOG_DIR, Catalog, ModelEntry
from genyard.providers.base import InputFile, RunContext
from genyard.providers.local.music import ComposerProvider
from genyard.providers.local.tesseract import TesseractProvider

FONT = "/usr/share/fonts/truetype/nanum/NanumGothic.ttf"
LINES = [
    "오늘 서울의 날씨는 맑습니다",
    "The quick brown fox jumps over the lazy dog",
    "지하철은 새벽 다섯 시에 운행을 시작합니다",
    "Optical character recognition works offline",
]


def with_defaults(model: ModelEntry, input: dict[str, Any]) -> dict[str, Any]:
    props = model.input_schema["properties"]
    return {k: v["default"] for k, v in props.items() if "default" in v} | input


def two_lines() -> bytes:
    font = ImageFont.truetype(FONT, 40)
    image = Image.new("RGB", (1000, 240), "white")
    draw = ImageDraw.Draw(image)
    draw.text((40, 40), LINES[0], font=font, fill="black")
    draw.text((40, 140), LINES[1], font=font, fill="black")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def full_page() -> bytes:
    """An A4 page at 150 dpi (1240x1754) with 40 lines of 24 px text."""
    font = ImageFont.truetype(FONT, 24)
    image = Image.new("L", (1240, 1754), 255)
    draw = ImageDraw.Draw(image)
    for i in range(40):
        draw.text((100, 100 + i * 38), LINES[i % 4] + " " + LINES[(i + 1) % 4], font=font, fill=0)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def latency(call: Callable[[], Any], runs: int) -> float:
    return statistics.median(timed(call) for _ in range(runs))


def throughput(call: Callable[[], Any], callers: int, per_caller: int) -> float:
    """Calls per second with ``callers`` threads each making ``per_caller`` calls."""

    def worker() -> None:
        for _ in range(per_caller):
            call()

    threads = [threading.Thread(target=worker) for _ in range(callers)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return callers * per_caller / (time.perf_counter() - started)


def rss_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, child


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--callers", type=int, default=8)
    args = parser.parse_args()
    catalog = Catalog.load([BUNDLED_CATALOG_DIR])
    ocr_model = catalog.get("tesseract-ocr/tesseract")
    music_model = catalog.get("genyard/midi-composer")
    assert ocr_model is not None and music_model is not None
    print(f"start: RSS {rss_mb()[0]:.0f} MB")

    ocr = TesseractProvider()
    print(f"ocr warm (discover tesseract, languages): {timed(lambda: ocr.warm(ocr_model)):.3f} s")
    for name, data in (("two lines 1000x240", two_lines()), ("A4 page 1240x1754", full_page())):
        image = InputFile(data, "image/png", "page.png", "data:")
        input = with_defaults(ocr_model, {"image": image})

        def read(input: dict[str, Any] = input) -> None:
            ocr.run(ocr_model, input, RunContext("bench", 1))

        first = timed(read)
        median = latency(read, args.runs)
        rate = throughput(read, args.callers, 2)
        own, child = rss_mb()
        print(
            f"ocr {name}: first {first:.2f} s, median {median:.2f} s, "
            f"{args.callers} callers {rate:.2f} images/s; peak RSS self {own:.0f} MB, "
            f"largest child {child:.0f} MB"
        )

    music = ComposerProvider()
    print(f"music warm (soundfont read once): {timed(lambda: music.warm(music_model)):.3f} s")
    for seconds, fmt in ((10, "wav"), (30, "wav"), (30, "mp3"), (180, "wav")):
        input = with_defaults(
            music_model,
            {"prompt": "epic orchestral with drums", "audio_duration": seconds,
             "output_format": fmt, "seed": 1},
        )  # fmt: skip

        def play(input: dict[str, Any] = input) -> None:
            music.run(music_model, input, RunContext("bench", 1))

        first = timed(play)
        median = latency(play, args.runs if seconds < 100 else 1)
        rate = throughput(play, args.callers, 1) if seconds < 100 else float("nan")
        own, child = rss_mb()
        print(
            f"music {seconds} s {fmt}: first {first:.2f} s, median {median:.2f} s "
            f"({seconds / median:.0f}x real time), {args.callers} callers {rate:.2f} clips/s "
            f"({rate * seconds:.0f} audio-s/s); peak RSS self {own:.0f} MB, "
            f"largest child {child:.0f} MB"
        )


if __name__ == "__main__":
    main()
