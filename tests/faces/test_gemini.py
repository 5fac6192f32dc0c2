"""The Gemini face against a real server, with the official ``google-genai`` SDK as the
client (no retries): generateContent plain and streamed (SSE and the JSON array),
usage equal to the prediction's, finish reasons, stop sequences, embedContent and
batchEmbedContents, the models list, auth by ``x-goog-api-key`` and ``?key=``, and the
errors (``ClientError``/``ServerError`` with Google's ``code`` and ``status``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from e2e_support import Server, get, wait_status
from google import genai
from google.genai import errors, types

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.sqlite_only(reason="model tests run on one database"),
]

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
E5 = "intfloat/multilingual-e5-small"
PARIS = "What is the capital of France?"
WRONG_KEY = "gy_live_" + "0" * 40
BASE = "/llm/gemini/v1beta"


@pytest.fixture(scope="module")
def server(module_server_factory: Callable[..., Server], database: str) -> Server:
    return module_server_factory()


def sdk(server: Server, key: str | None = None) -> genai.Client:
    return genai.Client(
        api_key=key if key is not None else server.admin_key,
        http_options=types.HttpOptions(
            base_url=f"{server.url}/llm/gemini/", api_version="v1beta", timeout=120_000
        ),
    )


def native_job(server: Server, prediction_id: str) -> dict[str, Any]:
    with server.client(server.admin_key) as client:
        return get(client, prediction_id)


def test_paris_and_usage_equal_the_prediction(server: Server) -> None:
    client = sdk(server)  # held: a genai.Client closes its connection when collected
    response = client.models.generate_content(model=MODEL, contents=PARIS)
    assert response.text is not None and "Paris" in response.text
    [candidate] = response.candidates or []
    assert candidate.finish_reason == types.FinishReason.STOP and candidate.index == 0
    assert candidate.content is not None and candidate.content.role == "model"
    assert response.model_version == MODEL
    usage = response.usage_metadata
    assert usage is not None and usage.prompt_token_count and usage.candidates_token_count
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    assert response.response_id is not None
    job = native_job(server, response.response_id)
    assert job["status"] == "succeeded" and job["output"]["text"] == response.text
    assert job["usage"]["input_tokens"] == usage.prompt_token_count
    assert job["usage"]["output_tokens"] == usage.candidates_token_count
    # Omitted sampling fields take the catalog's defaults (greedy, 256 tokens).
    assert job["input"]["temperature"] == 0 and job["input"]["max_tokens"] == 256


def test_system_instruction_turns_and_config(server: Server) -> None:
    client = sdk(server)
    response = client.models.generate_content(
        model=MODEL,
        contents=[
            types.Content(role="user", parts=[types.Part(text="Hello!")]),
            types.Content(role="model", parts=[types.Part(text="Hello! Ask me anything.")]),
            types.Content(role="user", parts=[types.Part(text=PARIS)]),
        ],
        config=types.GenerateContentConfig(
            system_instruction="You are a geography teacher.",
            temperature=0,
            top_p=0.5,
            max_output_tokens=40,
            seed=7,
            candidate_count=1,
        ),
    )
    assert response.text is not None and "Paris" in response.text
    job = native_job(server, str(response.response_id))
    assert [m["role"] for m in job["input"]["messages"]] == ["system", "user", "assistant", "user"]
    assert job["input"]["messages"][0]["content"] == "You are a geography teacher."
    assert {k: job["input"][k] for k in ("temperature", "top_p", "max_tokens", "seed")} == {
        "temperature": 0,
        "top_p": 0.5,
        "max_tokens": 40,
        "seed": 7,
    }


def test_streamed_text_equals_the_whole(server: Server) -> None:
    client = sdk(server)
    chunks = list(client.models.generate_content_stream(model=MODEL, contents=PARIS))
    text = "".join(c.text or "" for c in chunks)
    assert "Paris" in text and len(chunks) > 2
    last = chunks[-1]
    assert last.candidates and last.candidates[0].finish_reason == types.FinishReason.STOP
    assert all(c.candidates and c.candidates[0].finish_reason is None for c in chunks[:-1])
    usage = last.usage_metadata
    assert usage is not None
    job = native_job(server, str(last.response_id))
    assert job["output"]["text"] == text
    assert usage.prompt_token_count == job["usage"]["input_tokens"] > 0
    assert usage.candidates_token_count == job["usage"]["output_tokens"] > 0
    whole = client.models.generate_content(model=MODEL, contents=PARIS)
    assert whole.text == text  # greedy: the same answer


def test_a_job_canceled_mid_stream_ends_it_with_an_error(server: Server) -> None:
    client = sdk(server)
    chunks = client.models.generate_content_stream(
        model=MODEL,
        contents="Write a very long story about the sea.",
        config=types.GenerateContentConfig(max_output_tokens=2048),
    )
    first = next(chunks)  # the model is writing
    with server.client(server.admin_key) as native:
        assert native.delete(f"/v1/predictions/{first.response_id}").status_code == 200
    with pytest.raises(errors.ClientError) as caught:
        list(chunks)
    assert caught.value.code == 409 and caught.value.status == "ABORTED"
    assert "canceled" in str(caught.value.message)


def _post(server: Server, path: str, body: dict[str, Any], **kw: Any) -> httpx.Response:
    headers = kw.pop("headers", {"x-goog-api-key": server.admin_key})
    with httpx.Client(base_url=server.url, timeout=120) as client:
        return client.post(BASE + path, json=body, headers=headers, **kw)


def test_stream_as_raw_sse_and_as_a_json_array(server: Server) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": PARIS}]}]}
    path = f"/models/{MODEL}:streamGenerateContent"
    sse = _post(server, path, body, params={"alt": "sse"})
    assert sse.status_code == 200 and sse.headers["content-type"].startswith("text/event-stream")
    events = [orjson.loads(line[6:]) for line in sse.text.splitlines() if line.startswith("data: ")]
    array = _post(server, path, body)
    assert array.status_code == 200 and array.headers["content-type"] == "application/json"
    chunks = orjson.loads(array.content)
    for stream in (events, chunks):
        text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in stream)
        assert "Paris" in text
        assert stream[-1]["candidates"][0]["finishReason"] == "STOP"
        assert stream[-1]["usageMetadata"]["candidatesTokenCount"] > 0


def test_max_output_tokens_ends_with_max_tokens(server: Server) -> None:
    client = sdk(server)
    config = types.GenerateContentConfig(max_output_tokens=5)
    story = "Write a long story about a dragon."
    response = client.models.generate_content(model=MODEL, contents=story, config=config)
    assert response.candidates and response.candidates[0].finish_reason == "MAX_TOKENS"
    assert response.usage_metadata and response.usage_metadata.candidates_token_count == 5
    chunks = list(client.models.generate_content_stream(model=MODEL, contents=story, config=config))
    assert chunks[-1].candidates and chunks[-1].candidates[0].finish_reason == "MAX_TOKENS"


def test_stop_sequences_cut_the_text(server: Server) -> None:
    client = sdk(server)
    whole = client.models.generate_content(model=MODEL, contents=PARIS).text or ""
    assert "Paris" in whole
    config = types.GenerateContentConfig(stop_sequences=["Paris"])
    cut = client.models.generate_content(model=MODEL, contents=PARIS, config=config)
    assert cut.text == whole[: whole.index("Paris")]
    assert cut.candidates and cut.candidates[0].finish_reason == "STOP"


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))  # e5 vectors are normalised


def test_embeddings_place_a_korean_paraphrase_closest(server: Server) -> None:
    texts = [
        "오늘 날씨가 정말 좋네요",  # the weather is really nice today
        "오늘은 날씨가 참 맑고 좋습니다",  # a paraphrase
        "주식 시장이 크게 하락했다",  # the stock market fell sharply
    ]
    client = sdk(server)
    result = client.models.embed_content(
        model=E5,
        contents=texts,
        config=types.EmbedContentConfig(task_type="SEMANTIC_SIMILARITY"),
    )
    vectors = [list(e.values or []) for e in result.embeddings or []]
    assert [len(v) for v in vectors] == [384, 384, 384]
    assert _cosine(vectors[0], vectors[1]) > _cosine(vectors[0], vectors[2])
    # embedContent (the SDK batches even one text): the same vector, one text at a time.
    single = _post(
        server,
        f"/models/{E5}:embedContent",
        {"content": {"parts": [{"text": texts[0]}]}, "taskType": "SEMANTIC_SIMILARITY"},
    )
    assert single.status_code == 200, single.text
    values = single.json()["embedding"]["values"]
    assert _cosine(values, vectors[0]) > 0.999


def test_task_types_pick_e5_prefixes(server: Server) -> None:
    query, document = "capital of France", "Paris is the capital of France."
    batch = _post(
        server,
        f"/models/{E5}:batchEmbedContents",
        {
            "requests": [
                {"model": f"models/{E5}", "content": {"parts": [{"text": query}]},
                 "taskType": "RETRIEVAL_QUERY"},
                {"model": f"models/{E5}", "content": {"parts": [{"text": document}]},
                 "taskType": "RETRIEVAL_DOCUMENT"},
                {"model": f"models/{E5}", "content": {"parts": [{"text": query}]},
                 "taskType": "RETRIEVAL_DOCUMENT"},
            ]
        },
    )  # fmt: skip
    assert batch.status_code == 200, batch.text
    q, _, q_as_passage = [e["values"] for e in batch.json()["embeddings"]]
    assert _cosine(q, q_as_passage) < 0.999  # "query: " and "passage: " prefixes differ
    with server.client(server.admin_key) as client:
        jobs = client.get("/v1/predictions", params={"model": E5, "limit": 2}).json()["data"]
    tasks = sorted(native_job(server, j["id"])["input"]["task"] for j in jobs)
    assert tasks == ["passage", "query"]


def test_models_list_and_get(server: Server) -> None:
    client = sdk(server)
    models = {m.name: m for m in client.models.list()}
    chat, e5 = models[f"models/{MODEL}"], models[f"models/{E5}"]
    assert chat.supported_actions == ["generateContent", "streamGenerateContent"]
    assert e5.supported_actions == ["embedContent", "batchEmbedContents"]
    assert chat.input_token_limit == 2048 and chat.temperature == 0
    assert "models/google/gemma-3-270m" not in models  # completion: not for generateContent
    got = client.models.get(model=MODEL)
    assert got.name == f"models/{MODEL}" and got.display_name == "SmolLM2-135M-Instruct"
    with pytest.raises(errors.ClientError) as caught:
        client.models.get(model="nobody/nothing")
    assert caught.value.code == 404 and caught.value.status == "NOT_FOUND"


def test_auth_by_header_and_query_key(server: Server) -> None:
    body = {"contents": [{"parts": [{"text": PARIS}]}]}
    path = f"/models/{MODEL}:generateContent"
    by_query = _post(server, path, body, headers={}, params={"key": server.admin_key})
    assert by_query.status_code == 200, by_query.text
    assert "Paris" in by_query.json()["candidates"][0]["content"]["parts"][0]["text"]
    for key in (WRONG_KEY, "nonsense"):
        wrong_client = sdk(server, key)
        with pytest.raises(errors.ClientError) as caught:
            wrong_client.models.generate_content(model=MODEL, contents=PARIS)
        assert caught.value.code == 401 and caught.value.status == "UNAUTHENTICATED"
    wrong = _post(server, path, body, headers={}, params={"key": WRONG_KEY})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["status"] == "UNAUTHENTICATED"
    missing = _post(server, path, body, headers={})
    assert missing.status_code == 401 and missing.headers["x-should-retry"] == "false"


def test_request_errors(server: Server) -> None:
    client = sdk(server)

    def bad(model: str = MODEL, contents: Any = PARIS, **config: Any) -> errors.ClientError:
        with pytest.raises(errors.ClientError) as caught:
            client.models.generate_content(
                model=model, contents=contents, config=types.GenerateContentConfig(**config)
            )
        return caught.value

    unknown = bad(model="nobody/nothing")
    assert unknown.code == 404 and unknown.status == "NOT_FOUND"
    for model in ("google/gemma-3-270m", E5):
        wrong = bad(model=model)
        assert wrong.code == 400 and wrong.status == "INVALID_ARGUMENT"
        assert "chat model" in str(wrong.message)
    two = bad(candidate_count=2)
    assert two.code == 400 and "candidateCount" in str(two.message)
    assert "maxOutputTokens" in str(bad(max_output_tokens=100_000).message)
    assert "topK" in str(bad(top_k=5).message)
    assert "responseMimeType" in str(bad(response_mime_type="application/json").message)
    image = types.Part.from_bytes(data=b"\x89PNG", mime_type="image/png")
    assert "inlineData" in str(bad(contents=[image]).message)
    missing = _post(server, f"/models/{MODEL}:generateContent", {})
    assert missing.status_code == 400 and "contents" in missing.json()["error"]["message"]
    method = _post(server, f"/models/{MODEL}:countTokens", {"contents": []})
    assert method.status_code == 404 and method.json()["error"]["status"] == "NOT_FOUND"
    dims = _post(
        server,
        f"/models/{E5}:embedContent",
        {"content": {"parts": [{"text": "hi"}]}, "outputDimensionality": 128},
    )
    assert dims.status_code == 400 and "outputDimensionality" in dims.text
    assert dims.json()["error"]["code"] == 400


@pytest.fixture(scope="module")
def tight_server(module_server_factory: Callable[..., Server], database: str) -> Server:
    """Small waits, small rate limits for the free tier, no signup bonus."""
    return module_server_factory(
        GENYARD_LLM_WAIT_SECONDS="0.3",
        GENYARD_RATE_LIMIT_TIERS="free=3/100/1000;basic=60/2000/20000;pro=120/5000/50000;"
        "enterprise=300/20000/200000",
        GENYARD_SIGNUP_BONUS_CREDITS="0",
    )


def _new_key(server: Server, user: str, tier: str) -> str:
    server.cli("users", "create", user, "--tier", tier)
    return server.cli("keys", "create", "--user", user).stdout.strip().splitlines()[-1]


def test_no_credits_is_402(tight_server: Server) -> None:
    client = sdk(tight_server, _new_key(tight_server, "broke", "basic"))
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents=PARIS)
    assert caught.value.code == 402 and caught.value.status == "FAILED_PRECONDITION"
    with pytest.raises(errors.ClientError) as streamed:
        list(client.models.generate_content_stream(model=MODEL, contents=PARIS))
    assert streamed.value.code == 402


def test_rate_limit_is_429_resource_exhausted(tight_server: Server) -> None:
    client = sdk(tight_server, _new_key(tight_server, "hasty", "free"))
    for _ in range(3):
        list(client.models.list())
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents=PARIS)
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"


def test_a_slow_answer_is_504_and_its_job_canceled(tight_server: Server) -> None:
    client = sdk(tight_server)
    with pytest.raises(errors.ServerError) as caught:
        client.models.generate_content(
            model=MODEL,
            contents="Write a very long story about the sea.",
            config=types.GenerateContentConfig(max_output_tokens=2048),
        )
    assert caught.value.code == 504 and caught.value.status == "DEADLINE_EXCEEDED"
    with tight_server.client(tight_server.admin_key) as native:
        jobs = native.get("/v1/predictions", params={"model": MODEL}).json()["data"]
        job = wait_status(native, jobs[0]["id"], "canceled")
        balance = native.get("/v1/credits/balance").json()
    assert job["error"]["code"] == "timeout"
    assert job["usage"]["credits_charged"] == 0
    assert balance["held"] == 0
