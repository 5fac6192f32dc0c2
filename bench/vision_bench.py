"""The vision group's models called directly (no API): load time, one-request latency,
throughput with 8 concurrent callers (threads calling ``provider.run``), peak RSS.

    .venv/bin/python bench/vision_bench.py            # both models, each in a fresh process
    .venv/bin/python bench/vision_bench.py background # or: faces

Background removal's peak RSS is genyard's process plus each runner subprocess
(``VmHWM`` of ``/proc/<pid>/status``, read before the runners are closed). Inputs are
the test image of a person (tests/models/data/person.jpg) scaled to each size.
"""

from __future__ import annotations

import io
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PERSON = ROOT / "tests" / "models" / "data" / "person.jpg"
CALLERS = 8
# (width, height, latency runs, throughput calls): a 12-megapixel phone photo last
SIZES = ((320, 320, 15, 64), (640, 480, 15, 64), (1280, 960, 15, 32), (4032, 3024, 3, 8))


def _rss_mb(pid: int | None = None) -> float:
    """Peak RSS in MB: this process (getrusage) or another (VmHWM)."""
    if pid is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _latency(call: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _throughput(call: Callable[[], Any], total: int) -> float:
    """Calls per second with CALLERS threads sharing ``total`` calls."""
    started = time.perf_counter()
    with ThreadPoolExecutor(CALLERS) as pool:
        list(pool.map(lambda _: call(), range(total)))
    return total / (time.perf_counter() - started)


def bench_background() -> dict[str, Any]:
    from PIL import Image

    from genyard.domain.catalog import BUNDLED_CATALOG_DIR, Catalog
    from genyard.providers.base import InputFile, RunContext
    from genyard.providers.local.background import CACHE_KEY, MediapipeSelfieProvider
    from genyard.providers.runtime import model_cache

    model = Catalog.load([BUNDLED_CATALOG_DIR]).get("google/mediapipe-selfie-segmentation")
    assert model is not None
    provider = MediapipeSelfieProvider()
    provider.slot_plan(2)
    started = time.perf_counter()
    available = provider.availability()
    check = time.perf_counter() - started
    assert available.available, available
    started = time.perf_counter()
    provider.warm(model)
    load = time.perf_counter() - started
    person = Image.open(PERSON).convert("RGB")
    out: dict[str, Any] = {
        "model": model.id,
        "availability_check_s": round(check, 2),
        "load_s": round(load, 2),
        "sizes": {},
    }
    for width, height, runs, calls in SIZES:
        buffer = io.BytesIO()
        person.resize((width, height)).save(buffer, "JPEG", quality=90)
        image = InputFile(buffer.getvalue(), "image/jpeg", "person.jpg", "bench")

        def call(image: InputFile = image) -> Any:
            return provider.run(model, {"image": image}, RunContext("bench", 1))

        call()
        out["sizes"][f"{width}x{height}"] = {
            "latency_ms": round(1000 * _latency(call, runs), 1),
            f"throughput_{CALLERS}_callers_per_s": round(_throughput(call, calls), 1),
        }
        if width * height < 2_000_000:
            with model_cache().use(CACHE_KEY, lambda: None) as pool:
                out["runner_peak_rss_mb_up_to_1.2mp"] = [round(_rss_mb(p), 1) for p in pool.pids()]
    with model_cache().use(CACHE_KEY, lambda: None) as pool:
        pids = pool.pids()
        out["runner_processes"] = len(pids)
        out["runner_peak_rss_mb"] = [round(_rss_mb(pid), 1) for pid in pids]
    out["genyard_peak_rss_mb"] = round(_rss_mb(), 1)
    out["total_peak_rss_mb"] = round(out["genyard_peak_rss_mb"] + sum(out["runner_peak_rss_mb"]))
    model_cache().evict(CACHE_KEY)
    return out


def bench_faces() -> dict[str, Any]:
    from genyard.domain.catalog import BUNDLED_CATALOG_DIR, Catalog
    from genyard.providers.base import RunContext
    from genyard.providers.local.dcgan import DcganFacesProvider

    baseline = _rss_mb()
    model = Catalog.load([BUNDLED_CATALOG_DIR]).get("chienliu/dcgan-faces-64")
    assert model is not None
    provider = DcganFacesProvider()
    started = time.perf_counter()
    provider.warm(model)
    load = time.perf_counter() - started
    out: dict[str, Any] = {"model": model.id, "load_s": round(load, 2), "counts": {}}
    for count in (1, 4, 16):

        def call(count: int = count) -> Any:
            return provider.run(model, {"count": count, "seed": 1}, RunContext("bench", 1))

        call()
        calls = _throughput(call, 64)
        out["counts"][str(count)] = {
            "latency_ms": round(1000 * _latency(call, 15), 1),
            f"throughput_{CALLERS}_callers_faces_per_s": round(calls * count, 1),
        }
    out["peak_rss_mb"] = round(_rss_mb(), 1)
    out["rss_before_load_mb"] = round(baseline, 1)
    return out


def main(argv: list[str]) -> None:
    which = argv[1:] or ["background", "faces"]
    if len(which) > 1:  # each in a fresh process, so RSS is its own
        for name in which:
            subprocess.run([sys.executable, __file__, name], check=True)
        return
    result = bench_background() if which[0] == "background" else bench_faces()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(sys.argv)
