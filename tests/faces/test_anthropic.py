"""The Anthropic face against a real server, with the official ``anthropic`` SDK as the
client (retries off): messages plain and streamed, Anthropic's exact event order, usage
equal to the prediction's, stop reasons, the models list, auth by both headers, and
every error type the SDK maps (401, 400, 404, 402, 429, 504)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import orjson
import pytest
from e2e_support import Server, get, wait_status

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.sqlite_only(reason="model tests run on one database"),
]

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
PARIS = [{"role": "user", "content": "What is the capital of France?"}]
WRONG_KEY = "gy_live_" + "0" * 40


@pytest.fixture(scope="module")
def server(module_server_factory: Callable[..., Server], database: str) -> Server:
    return module_server_factory()


def sdk(server: Server, key: str | None = None, **options: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key=key if key is not None else server.admin_key,
        base_url=f"{server.url}/llm/anthropic",
        max_retries=0,
        timeout=120,
        **options,
    )


def native_job(server: Server, message_id: str) -> dict[str, Any]:
    with server.client(server.admin_key) as client:
        return get(client, "pred_" + message_id.removeprefix("msg_"))


def test_paris_and_usage_equal_the_prediction(server: Server) -> None:
    message = sdk(server).messages.create(model=MODEL, max_tokens=64, messages=PARIS)
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    assert message.model == MODEL
    assert [block.type for block in message.content] == ["text"]
    text = message.content[0].text  # type: ignore[union-attr]
    assert "Paris" in text
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    job = native_job(server, message.id)
    assert job["status"] == "succeeded" and job["model"] == MODEL
    assert job["output"]["text"] == text
    assert job["usage"]["input_tokens"] == message.usage.input_tokens
    assert job["usage"]["output_tokens"] == message.usage.output_tokens
    # Omitted sampling fields took the catalog's defaults; given ones went through.
    assert job["input"]["temperature"] == 0 and job["input"]["max_tokens"] == 64


def test_system_prompt_as_blocks_and_a_conversation(server: Server) -> None:
    message = sdk(server).messages.create(
        model=MODEL,
        max_tokens=32,
        extra_body={"temperature": 0},  # this SDK leaves sampling fields to extra_body
        system=[{"type": "text", "text": "You are a geography teacher."}],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "Hello!"}]},
            {"role": "assistant", "content": "Hello! Ask me anything about geography."},
            *PARIS,
        ],
    )
    assert "Paris" in message.content[0].text  # type: ignore[union-attr]
    job = native_job(server, message.id)
    roles = [m["role"] for m in job["input"]["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert job["input"]["messages"][0]["content"] == "You are a geography teacher."
    assert job["input"]["temperature"] == 0


def test_streamed_text_equals_the_message(server: Server) -> None:
    client = sdk(server)
    with client.messages.stream(model=MODEL, max_tokens=64, messages=PARIS) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    text = "".join(pieces)
    assert "Paris" in text and len(pieces) > 1
    assert final.content[0].text == text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    job = native_job(server, final.id)
    assert job["output"]["text"] == text
    assert final.usage.input_tokens == job["usage"]["input_tokens"] > 0
    assert final.usage.output_tokens == job["usage"]["output_tokens"] > 0
    # Greedy decoding: the plain call answers the same text.
    plain = client.messages.create(model=MODEL, max_tokens=64, messages=PARIS)
    assert plain.content[0].text == text  # type: ignore[union-attr]


def test_a_job_canceled_mid_stream_ends_it_with_an_error_event(server: Server) -> None:
    story = [{"role": "user", "content": "Write a very long story about the sea."}]
    client = sdk(server)
    with (
        client.messages.stream(model=MODEL, max_tokens=2048, messages=story) as stream,
        server.client(server.admin_key) as native,
    ):
        pieces = stream.text_stream
        next(pieces)  # the model is writing
        prediction = "pred_" + stream.current_message_snapshot.id.removeprefix("msg_")
        assert native.delete(f"/v1/predictions/{prediction}").status_code == 200
        with pytest.raises(anthropic.APIStatusError) as caught:
            list(pieces)
    assert caught.value.body["error"]["type"] == "conflict_error"  # type: ignore[index]
    assert "canceled" in str(caught.value.api_message)


def _raw_events(server: Server, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    events = []
    headers = {"x-api-key": server.admin_key, "anthropic-version": "2023-06-01"}
    with (
        httpx.Client(base_url=server.url, timeout=120) as client,
        client.stream("POST", "/llm/anthropic/v1/messages", json=body, headers=headers) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                assert name is not None
                data = orjson.loads(line[len("data: ") :])
                assert data["type"] == name  # every event's data names its type
                events.append((name, data))
                name = None
    return events


def test_raw_event_sequence_is_anthropics(server: Server) -> None:
    events = _raw_events(
        server, {"model": MODEL, "max_tokens": 64, "messages": PARIS, "stream": True}
    )
    names = [name for name, _ in events]
    deltas = [data for name, data in events if name == "content_block_delta"]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    body = [n for n in names[3:-3] if n != "ping"]
    assert body == ["content_block_delta"] * len(deltas) and deltas
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    start = events[0][1]["message"]
    assert start["role"] == "assistant" and start["content"] == [] and start["model"] == MODEL
    assert start["stop_reason"] is None and start["id"].startswith("msg_")
    assert events[1][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert all(d["index"] == 0 and d["delta"]["type"] == "text_delta" for d in deltas)
    text = "".join(d["delta"]["text"] for d in deltas)
    assert "Paris" in text
    delta = events[-2][1]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    job = native_job(server, start["id"])
    assert job["output"]["text"] == text
    assert delta["usage"]["output_tokens"] == job["usage"]["output_tokens"] > 0
    assert delta["usage"]["input_tokens"] == job["usage"]["input_tokens"] > 0


def test_max_tokens_ends_with_stop_reason_max_tokens(server: Server) -> None:
    client = sdk(server)
    prompt = [{"role": "user", "content": "Write a long story about a dragon."}]
    message = client.messages.create(model=MODEL, max_tokens=5, messages=prompt)
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 5
    with client.messages.stream(model=MODEL, max_tokens=5, messages=prompt) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 5


def test_stop_sequences_cut_the_text(server: Server) -> None:
    client = sdk(server)
    whole = client.messages.create(model=MODEL, max_tokens=64, messages=PARIS)
    text = whole.content[0].text  # type: ignore[union-attr]
    assert "Paris" in text
    cut = client.messages.create(
        model=MODEL, max_tokens=64, messages=PARIS, stop_sequences=["Paris"]
    )
    assert cut.content[0].text == text[: text.index("Paris")]  # type: ignore[union-attr]
    assert (cut.stop_reason, cut.stop_sequence) == ("stop_sequence", "Paris")


def test_models_list_and_retrieve(server: Server) -> None:
    client = sdk(server)
    ids = [m.id for m in client.models.list()]
    assert MODEL in ids
    assert "google/gemma-3-270m" not in ids  # a completion model: not for messages
    assert "intfloat/multilingual-e5-small" not in ids
    model = client.models.retrieve(MODEL)
    assert model.id == MODEL and model.type == "model"
    assert model.max_input_tokens == 2048
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("nobody/nothing")


def test_auth_by_x_api_key_and_bearer(server: Server) -> None:
    bearer = anthropic.Anthropic(
        auth_token=server.admin_key, base_url=f"{server.url}/llm/anthropic", max_retries=0
    )
    assert MODEL in [m.id for m in bearer.models.list()]
    for key in (WRONG_KEY, "not-a-key"):
        with pytest.raises(anthropic.AuthenticationError) as caught:
            sdk(server, key).messages.create(model=MODEL, max_tokens=8, messages=PARIS)
        assert caught.value.status_code == 401
        assert caught.value.type == "authentication_error"
        assert caught.value.body["type"] == "error"  # type: ignore[index]
    with httpx.Client(base_url=server.url) as raw:
        r = raw.post("/llm/anthropic/v1/messages", json={"model": MODEL})
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "authentication_error"
    assert r.headers["x-should-retry"] == "false"


def test_request_errors(server: Server) -> None:
    client = sdk(server)
    with pytest.raises(anthropic.BadRequestError) as caught:  # the SDK checks it too: go around
        client.post("/v1/messages", body={"model": MODEL, "messages": PARIS}, cast_to=object)
    assert caught.value.type == "invalid_request_error"
    assert "max_tokens" in str(caught.value.api_message)
    with pytest.raises(anthropic.NotFoundError) as not_found:
        client.messages.create(model="nobody/nothing", max_tokens=8, messages=PARIS)
    assert not_found.value.type == "not_found_error"
    for model in ("google/gemma-3-270m", "intfloat/multilingual-e5-small"):
        with pytest.raises(anthropic.BadRequestError, match="chat model"):
            client.messages.create(model=model, max_tokens=8, messages=PARIS)
    with pytest.raises(anthropic.BadRequestError, match="max_tokens"):
        client.messages.create(model=MODEL, max_tokens=100_000, messages=PARIS)
    with pytest.raises(anthropic.BadRequestError, match="image"):
        client.messages.create(
            model=MODEL,
            max_tokens=8,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": "AA=="},
                        }
                    ],
                }
            ],
        )
    with pytest.raises(anthropic.BadRequestError, match="top_k"):
        client.messages.create(model=MODEL, max_tokens=8, messages=PARIS, extra_body={"top_k": 5})
    with pytest.raises(anthropic.BadRequestError, match="tools"):
        client.messages.create(
            model=MODEL,
            max_tokens=8,
            messages=PARIS,
            tools=[{"name": "f", "input_schema": {"type": "object"}}],
        )
    with pytest.raises(anthropic.NotFoundError):  # an unknown route, in Anthropic's shape
        client.get("/v1/nothing", cast_to=object)


@pytest.fixture(scope="module")
def tight_server(module_server_factory: Callable[..., Server], database: str) -> Server:
    """Small waits, small rate limits for the free tier, no signup bonus."""
    server = module_server_factory(
        GENYARD_LLM_WAIT_SECONDS="0.3",
        GENYARD_RATE_LIMIT_TIERS="free=3/100/1000;basic=60/2000/20000;pro=120/5000/50000;"
        "enterprise=300/20000/200000",
        GENYARD_SIGNUP_BONUS_CREDITS="0",
    )
    return server


def _new_key(server: Server, user: str, tier: str) -> str:
    server.cli("users", "create", user, "--tier", tier)
    return server.cli("keys", "create", "--user", user).stdout.strip().splitlines()[-1]


def test_no_credits_is_402(tight_server: Server) -> None:
    key = _new_key(tight_server, "broke", "basic")
    client = sdk(tight_server, key)
    with pytest.raises(anthropic.PaymentRequiredError) as caught:
        client.messages.create(model=MODEL, max_tokens=8, messages=PARIS)
    assert caught.value.type == "billing_error"
    with pytest.raises(anthropic.PaymentRequiredError):
        client.messages.create(model=MODEL, max_tokens=8, messages=PARIS, stream=True)


def test_rate_limit_is_429(tight_server: Server) -> None:
    client = sdk(tight_server, _new_key(tight_server, "hasty", "free"))
    for _ in range(3):
        client.models.list()
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model=MODEL, max_tokens=8, messages=PARIS)
    assert caught.value.type == "rate_limit_error"
    assert int(caught.value.response.headers["retry-after"]) >= 1


def test_a_slow_answer_is_504_and_its_job_canceled(tight_server: Server) -> None:
    client = sdk(tight_server)
    story = [{"role": "user", "content": "Write a very long story about the sea."}]
    with pytest.raises(anthropic.GatewayTimeoutError) as caught:
        client.messages.create(model=MODEL, max_tokens=2048, messages=story)
    assert caught.value.type == "timeout_error"
    assert caught.value.response.headers["x-should-retry"] == "false"
    with tight_server.client(tight_server.admin_key) as native:
        jobs = native.get("/v1/predictions", params={"model": MODEL}).json()["data"]
        job = wait_status(native, jobs[0]["id"], "canceled")
    assert job["error"]["code"] == "timeout"
    assert job["usage"]["credits_charged"] == 0
    balance = native_balance(tight_server)
    assert balance["held"] == 0


def native_balance(server: Server) -> dict[str, Any]:
    with server.client(server.admin_key) as client:
        r = client.get("/v1/credits/balance")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
    return body.get("balance", body)
