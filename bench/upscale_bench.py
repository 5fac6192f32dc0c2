"""Real-ESRGAN on this machine: load time, RSS, latency per model and scale, video
per-frame time, and throughput with 8 concurrent callers (1 vs 2 engine processes).

    .venv/bin/python bench/upscale_bench.py            # everything (~5 minutes on 2 cores)
    .venv/bin/python bench/upscale_bench.py latency    # one part: load, latency, video,
                                                       # concurrency, gil

Prints one JSON object per measurement. Engines are measured as genyard runs them: one
process per engine (:mod:`genyard.providers.local.realesrgan_engine`), called through
the providers.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from genyard.domain.catalog import BUNDLED_CATALOG_DIR, Catalog
from genyard.providers.base import InputFile, RunContext
from genyard.providers.local.realesrgan import RealEsrganProvider
from genyard.providers.local.realesrgan_child import load_wrapper, package_dir
from genyard.providers.local.realesrgan_engine import (
    WEIGHTS,
    EngineProcess,
    Weights,
    pick_weights,
)
from genyard.providers.local.realesrgan_video import RealEsrganVideoProvider

CATALOG = Catalog.load([BUNDLED_CATALOG_DIR])
IMAGES = RealEsrganProvider()
VIDEOS = RealEsrganVideoProvider()
MODELS = {
    "xinntao/realesrgan-x4plus": [4, 2],
    "xinntao/realesrgan-x4plus-anime": [4, 2],
    "xinntao/realesr-animevideov3": [2, 3, 4],
}
REPEATS = 3
WEIGHTS_128 = [
    "realesrgan-x4plus",
    "realesrgan-x4plus-anime",
    "realesr-animevideov3-x2",
    "realesr-animevideov3-x3",
    "realesr-animevideov3-x4",
]


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def picture(size: int) -> bytes:
    image = Image.new("RGB", (size, size), (235, 230, 214))
    draw = ImageDraw.Draw(image)
    draw.ellipse((size // 10, size // 10, size // 2, size // 2), fill=(196, 40, 40), width=3)
    draw.rectangle((size // 2, size // 2, size - 8, size - 8), fill=(40, 90, 200), width=3)
    for i in range(0, size, 6):
        draw.line((i, size, size, i), fill=(20, 120, 40))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def image_input(size: int, scale: int) -> dict[str, Any]:
    file = InputFile(picture(size), "image/png", "bench.png", "bench:picture")
    return {"image": file, "scale": scale}


def load() -> None:
    """Load time and RSS of one engine process per weights file (cold start)."""
    for stem, scale in [
        ("realesrgan-x4plus", 4),
        ("realesrgan-x4plus-anime", 4),
        ("realesr-animevideov3-x2", 2),
    ]:
        tile = 64 if "x4plus" in stem else 128
        process = EngineProcess(Weights(stem, scale, tile))
        started = time.monotonic()
        process.start()
        loaded = time.monotonic() - started
        rss_loaded = process.rss_mb()[0]
        size = 128
        process.upscale(bytes(size * size * 3), size, size)
        rss, peak = process.rss_mb()
        emit(
            part="load",
            weights=stem,
            tilesize=tile,
            load_s=round(loaded, 2),
            rss_loaded_mb=rss_loaded,
            rss_after_128px_mb=rss,
            peak_mb=peak,
        )
        process.close()


def latency() -> None:
    """One request at a time, engine warm: 128x128 in, per model and scale."""
    for model_id, scales in MODELS.items():
        model = CATALOG.get(model_id)
        for scale in scales:
            IMAGES.run(model, image_input(128, scale), RunContext("warm", 1))
            times = []
            for _ in range(REPEATS):
                started = time.monotonic()
                IMAGES.run(model, image_input(128, scale), RunContext("bench", 1))
                times.append(time.monotonic() - started)
            emit(
                part="latency",
                model=model_id,
                input="128x128",
                scale=scale,
                median_s=round(statistics.median(times), 3),
                runs=[round(t, 3) for t in times],
            )


def video() -> None:
    """The whole video pipeline on clips of a few sizes: seconds per frame."""
    model = CATALOG.get("xinntao/realesrgan-video")
    with tempfile.TemporaryDirectory() as tmp:
        for size, seconds in [("96x64", 2), ("320x180", 2), ("640x360", 1)]:
            clip = Path(tmp) / f"{size}.mp4"
            subprocess.run(
                [
                    "ffmpeg", "-v", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=24:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=duration={seconds}",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip),
                ],
                check=True,
            )  # fmt: skip
            file = InputFile(clip.read_bytes(), "video/mp4", "clip.mp4", "bench:clip")
            VIDEOS.run(model, {"video": file, "scale": 2}, RunContext("warm", 1))
            started = time.monotonic()
            result = VIDEOS.run(model, {"video": file, "scale": 2}, RunContext("bench", 1))
            took = time.monotonic() - started
            frames = 24 * seconds
            emit(
                part="video",
                input=size,
                frames=frames,
                scale=2,
                output=f"{result.output['width']}x{result.output['height']}",
                total_s=round(took, 2),
                per_frame_s=round(took / frames, 3),
                realtime_factor=round(took / seconds, 1),
            )


def concurrency() -> None:
    """8 callers at once, as the worker runs them: at most ``parallel`` calls in
    flight (each on its own engine process)."""
    for model_id, size, scale, requests in [
        ("xinntao/realesr-animevideov3", 128, 2, 16),
        ("xinntao/realesrgan-x4plus", 64, 4, 8),
    ]:
        for parallel in (1, 2):
            emit(**eight_callers(model_id, size, scale, parallel, requests))


def eight_callers(
    model_id: str, size: int, scale: int, parallel: int, requests: int
) -> dict[str, Any]:
    model = CATALOG.get(model_id)
    gate = threading.Semaphore(parallel)
    latencies: list[float] = []

    def one(_: int) -> None:
        IMAGES.run(model, image_input(size, scale), RunContext("bench", 1))

    def call(_: int) -> None:
        submitted = time.monotonic()
        with gate:
            one(0)
        latencies.append(time.monotonic() - submitted)

    with ThreadPoolExecutor(parallel) as warm:  # start the engines this plan uses
        list(warm.map(one, range(parallel)))
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(call, range(requests)))
    took = time.monotonic() - started
    latencies.sort()
    return {
        "part": "concurrency",
        "model": model_id,
        "input": f"{size}x{size}",
        "scale": scale,
        "callers": 8,
        "parallel_calls": parallel,
        "requests": requests,
        "images_per_s": round(requests / took, 2),
        "p50_s": round(latencies[len(latencies) // 2], 2),
        "p95_s": round(latencies[int(len(latencies) * 0.95) - 1], 2),
    }


def cpu() -> None:
    """CPU seconds per image of the engine processes, one alone vs two at once.

    On a shared machine wall-clock throughput depends on the neighbours; the CPU time
    an image takes does not (much). If two processes at once each spend what one spends
    alone, two free cores give twice the throughput of one."""
    plans = [(stem, 128, 3, (1,)) for stem in WEIGHTS_128] + [
        ("realesr-animevideov3-x2", 128, 8, (2,)),
        ("realesrgan-x4plus", 64, 4, (1, 2)),
    ]
    for stem, size, count, parallels in plans:
        scale = WEIGHTS[stem]
        tile = 64 if "x4plus" in stem else 128
        frame = bytes(size * size * 3)
        for parallel in parallels:
            processes = [EngineProcess(Weights(stem, scale, tile)).start() for _ in range(parallel)]
            for process in processes:
                process.upscale(frame, size, size)
            before = [cpu_seconds(p) for p in processes]
            started = time.monotonic()
            with ThreadPoolExecutor(parallel) as pool:
                list(pool.map(repeat, processes, [(frame, size, count)] * parallel))
            took = time.monotonic() - started
            spent = sum(cpu_seconds(p) - b for p, b in zip(processes, before, strict=True))
            emit(
                part="cpu",
                weights=stem,
                input=f"{size}x{size}",
                processes=parallel,
                images=count * parallel,
                cpu_s_per_image=round(spent / (count * parallel), 3),
                wall_s=round(took, 2),
                images_per_s=round(count * parallel / took, 2),
            )
            for process in processes:
                process.close()


def repeat(process: EngineProcess, job: tuple[bytes, int, int]) -> None:
    frame, size, count = job
    for _ in range(count):
        process.upscale(frame, size, size)


def cpu_seconds(process: EngineProcess) -> float:
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def gil() -> None:
    """Why the engine runs in a process: in-process, one call holds the GIL throughout
    (a Python thread that wakes every 10 ms gets no turn)."""
    wrapped = load_wrapper()
    weights = pick_weights("realesr-animevideov3", 2)
    param, bin_ = weights.paths()
    engine = wrapped.RealESRGANWrapped(-1, False)
    engine.set_parameters(128, 2)
    engine.load(str(param), str(bin_))
    size = 256
    source = wrapped.RealESRGANImage(bytes(size * size * 3), size, size, 3)
    target = wrapped.RealESRGANImage(bytes(size * size * 12), size * 2, size * 2, 3)
    ticks: list[float] = []
    stop = threading.Event()

    def ticker() -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    thread = threading.Thread(target=ticker)
    thread.start()
    time.sleep(0.1)
    started = time.monotonic()
    engine.process(source, target)
    ended = time.monotonic()
    stop.set()
    thread.join()
    emit(
        part="gil",
        in_process_call_s=round(ended - started, 2),
        ticker_turns_during_call=len([t for t in ticks if started < t < ended]),
        expected_turns_if_released=int((ended - started) / 0.01),
        package=str(package_dir()),
    )


PARTS = {
    "load": load,
    "latency": latency,
    "video": video,
    "concurrency": concurrency,
    "cpu": cpu,
    "gil": gil,
}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(PARTS):
        PARTS[name]()
    sys.stdout.flush()
    # The wrapper loaded in-process (gil) crashes in its static destructors at exit.
    os._exit(0)
