"""The speech models measured through their providers, each in a fresh process:
load time, one-request latency and real-time factor, throughput with 8 concurrent
callers (threads calling ``provider.run``), and resident memory.

    .venv/bin/python bench/speech_bench.py                 # all four models
    .venv/bin/python bench/speech_bench.py --model openai/whisper-tiny.en --requests 16

Inputs: piper's joe voice reading a 121-character English text (~8 s) for whisper,
espeak-ng's Korean (~3 s) for vosk, the same English text for piper and the Korean
text for espeak-ng. Prints a Markdown table; nothing is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

WHISPER = "openai/whisper-tiny.en"
VOSK = "alphacephei/vosk-model-small-ko"
PIPER = "rhasspy/piper-en_US-joe-medium"
ESPEAK = "espeak-ng/espeak-ng"
ENGLISH = (
    "The weather was cold and windy this morning. "
    "Please bring a warm coat and meet me at the station before the train leaves."
)
KOREAN = "안녕하세요. 오늘 날씨가 정말 좋습니다."


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def speak(model_id: str) -> bytes:
    from genyard.domain.catalog import BUNDLED_CATALOG_DIR, Catalog
    from genyard.providers.base import RunContext
    from genyard.providers.registry import ProviderRegistry

    entry = Catalog.load([BUNDLED_CATALOG_DIR]).get(model_id)
    assert entry is not None
    provider = ProviderRegistry.from_entry_points().get(entry.provider)
    assert provider is not None
    input = {"text": ENGLISH} if model_id == PIPER else {"text": KOREAN, "language": "ko"}
    data: bytes = provider.run(entry, input, RunContext("bench", 1)).output["audio"].data
    return data


def measure(model_id: str, requests: int, callers: int) -> dict[str, Any]:
    from genyard.domain.catalog import BUNDLED_CATALOG_DIR, Catalog
    from genyard.providers.base import InputFile, RunContext
    from genyard.providers.registry import ProviderRegistry

    catalog = Catalog.load([BUNDLED_CATALOG_DIR])
    registry = ProviderRegistry.from_entry_points()

    def runner(mid: str) -> Any:
        entry = catalog.get(mid)
        assert entry is not None
        provider = registry.get(entry.provider)
        assert provider is not None
        props = entry.input_schema["properties"]
        defaults = {k: p["default"] for k, p in props.items() if "default" in p}

        def go(input: dict[str, Any]) -> Any:
            return provider.run(entry, defaults | input, RunContext("bench", 1))

        return entry, provider, go

    if model_id in (WHISPER, VOSK):
        # the speech is made in another process, so that the TTS engine's memory is not
        # counted here
        made = subprocess.run(
            [sys.executable, __file__, "--speak", PIPER if model_id == WHISPER else ESPEAK],
            capture_output=True, check=True,
        ).stdout  # fmt: skip
        input: dict[str, Any] = {"audio": InputFile(made, "audio/wav", "speech.wav", "x")}
    elif model_id == PIPER:
        input = {"text": ENGLISH}
    else:
        input = {"text": KOREAN, "language": "ko"}

    entry, provider, go = runner(model_id)
    base = rss_mb()
    started = time.perf_counter()
    warm = getattr(provider, "warm", None)
    if warm is not None:
        warm(entry)
    load_s = time.perf_counter() - started
    loaded = rss_mb()

    def seconds_of(result: Any) -> float:
        return float(result.output["duration"])

    latencies, cpu = [], []
    audio_s = 0.0
    for _ in range(3):
        t, c = time.perf_counter(), time.process_time()
        result = go(input)
        latencies.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        audio_s = seconds_of(result)
    one = statistics.median(latencies)
    after_one = rss_mb()

    peak = [0.0]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    each: list[float] = []

    def call(_: int) -> None:
        t = time.perf_counter()
        go(input)
        each.append(time.perf_counter() - t)

    t = time.perf_counter()
    with ThreadPoolExecutor(callers) as pool:
        list(pool.map(call, range(requests)))
    wall = time.perf_counter() - t
    stop.set()
    watcher.join()
    each.sort()
    return {
        "model": model_id,
        "load_s": round(load_s, 2),
        "rss_base_mb": round(base),
        "rss_loaded_mb": round(loaded),
        "model_mb": round(after_one - base),
        "audio_s": round(audio_s, 2),
        "latency_s": round(one, 3),
        "rtf": round(one / audio_s, 3),
        "cpu_rtf": round(statistics.median(cpu) / audio_s, 3),
        "callers": callers,
        "requests": requests,
        "req_per_s": round(requests / wall, 2),
        "audio_s_per_s": round(requests * audio_s / wall, 1),
        "p50_s": round(each[len(each) // 2], 2),
        "p95_s": round(each[min(len(each) - 1, int(len(each) * 0.95))], 2),
        "rss_peak_mb": round(max(peak[0], peak_mb())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", help="a model id (repeatable); default all")
    parser.add_argument("--requests", type=int, default=16, help="requests in the 8-caller run")
    parser.add_argument("--callers", type=int, default=8)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process's model
    parser.add_argument("--speak", help=argparse.SUPPRESS)  # write a test input to stdout
    args = parser.parse_args()
    if args.speak:
        sys.stdout.buffer.write(speak(args.speak))
        return
    if args.one:
        print(json.dumps(measure(args.one, args.requests, args.callers)))
        return
    rows = []
    before = os.getloadavg()[0]
    for model_id in args.model or [WHISPER, VOSK, PIPER, ESPEAK]:
        out = subprocess.run(
            [sys.executable, __file__, "--one", model_id, "--requests", str(args.requests),
             "--callers", str(args.callers)],
            capture_output=True, text=True, check=True, env=os.environ | {"PYTHONUNBUFFERED": "1"},
        ).stdout  # fmt: skip
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr)
    load = os.getloadavg()[0]
    print(f"\n{os.cpu_count()} cores, load average {before:.1f} before, {load:.1f} after\n")
    print(
        "| model | load s | model RSS MB | audio s | one request s | RTF | CPU s per audio s "
        f"| {args.callers} callers req/s | audio-s/s | p50 s | p95 s | peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['load_s']} | {r['model_mb']} | {r['audio_s']} | "
            f"{r['latency_s']} | {r['rtf']} | {r['cpu_rtf']} | {r['req_per_s']} | "
            f"{r['audio_s_per_s']} | "
            f"{r['p50_s']} | {r['p95_s']} | {r['rss_peak_mb']} |"
        )


if __name__ == "__main__":
    main()
