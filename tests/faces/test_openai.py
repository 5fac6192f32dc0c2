"""The OpenAI face against a real server, with the official ``openai`` SDK as the client:
real models (SmolLM2 chat, Gemma completion, e5 embeddings, piper/espeak-ng speech,
whisper transcription, the DCGAN faces), real outputs, and every error type the SDK
raises. SQLite only: the models are the point here; the queue runs on both elsewhere."""

from __future__ import annotations

import base64
import io
import struct
import wave
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from e2e_support import Server

from word_errors import word_error_rate, words

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.sqlite_only(reason="model tests run on one database"),
]

CHAT = "HuggingFaceTB/SmolLM2-135M-Instruct"
COMPLETION = "google/gemma-3-270m"
E5 = "intfloat/multilingual-e5-small"
PARIS = [{"role": "user", "content": "What is the capital of France?"}]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def server(module_server_factory: Callable[..., Server], database: str) -> Server:
    # New users start with no credits (the 402 test); the admin has its 1000.
    return module_server_factory(GENYARD_SIGNUP_BONUS_CREDITS="0")  # type: ignore[no-any-return]


def sdk(server: Server, key: str) -> openai.OpenAI:
    return openai.OpenAI(
        api_key=key, base_url=f"{server.url}/llm/openai/v1", max_retries=0, timeout=120
    )


@pytest.fixture(scope="module")
def client(server: Server) -> openai.OpenAI:
    return sdk(server, server.admin_key)


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with server.client(server.admin_key) as c:
        yield c


def prediction(http: httpx.Client, response_id: str) -> dict[str, Any]:
    job_id = response_id.split("-", 1)[1]
    got = http.get(f"/v1/predictions/{job_id}")
    assert got.status_code == 200, got.text
    body: dict[str, Any] = got.json()
    return body


# -- chat completions ------------------------------------------------------------------


def test_chat_names_paris_with_the_predictions_usage(
    client: openai.OpenAI, http: httpx.Client
) -> None:
    done = client.chat.completions.create(model=CHAT, messages=PARIS, max_tokens=32)  # type: ignore[arg-type]
    assert done.object == "chat.completion"
    assert done.model == CHAT
    choice = done.choices[0]
    assert "Paris" in (choice.message.content or ""), choice.message.content
    assert choice.message.role == "assistant"
    assert choice.finish_reason == "stop"
    assert done.usage is not None
    assert done.usage.prompt_tokens > 0 and done.usage.completion_tokens > 0
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    job = prediction(http, done.id)
    assert done.id == f"chatcmpl-{job['id']}"
    assert job["status"] == "succeeded" and job["model"] == CHAT
    assert job["input"]["max_tokens"] == 32
    assert job["input"]["temperature"] == 0  # omitted: the catalog's default, not OpenAI's 1
    assert job["usage"]["input_tokens"] == done.usage.prompt_tokens
    assert job["usage"]["output_tokens"] == done.usage.completion_tokens
    assert job["output"]["text"] == choice.message.content


def test_chat_streams_tokens_then_finish_and_usage(
    client: openai.OpenAI, http: httpx.Client
) -> None:
    # content as a list of text parts, and a developer message read as system
    messages: Any = [
        {"role": "developer", "content": "You are a helpful assistant."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is the capital "},
                {"type": "text", "text": "of France?"},
            ],
        },
    ]
    stream = client.chat.completions.create(
        model=CHAT,
        messages=messages,
        max_completion_tokens=32,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    text = "".join(pieces)
    assert "Paris" in text, text
    assert sum(1 for p in pieces if p) > 1  # token by token, not one lump
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and not any(finishes[:-1])
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert all(c.usage is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1
    job = prediction(http, last.id)
    assert job["output"]["text"] == text
    assert job["input"]["messages"][0] == {
        "role": "system",
        "content": "You are a helpful assistant.",
    }
    assert job["usage"]["input_tokens"] == last.usage.prompt_tokens
    assert job["usage"]["output_tokens"] == last.usage.completion_tokens


def test_stop_sequence_and_max_tokens(client: openai.OpenAI) -> None:
    stopped = client.chat.completions.create(model=CHAT, messages=PARIS, stop=["Paris"])  # type: ignore[arg-type]
    content = stopped.choices[0].message.content or ""
    assert "Paris" not in content and "France" in content, content
    assert stopped.choices[0].finish_reason == "stop"
    cut = client.chat.completions.create(model=CHAT, messages=PARIS, max_tokens=3)  # type: ignore[arg-type]
    assert cut.choices[0].finish_reason == "length"
    assert cut.usage is not None and cut.usage.completion_tokens == 3


def test_completions_on_gemma_plain_and_streamed(client: openai.OpenAI) -> None:
    done = client.completions.create(
        model=COMPLETION, prompt="Paris is the capital of", max_tokens=8, temperature=0
    )
    assert done.object == "text_completion"
    assert "France" in done.choices[0].text, done.choices[0].text
    assert done.choices[0].finish_reason in ("stop", "length")
    assert done.usage is not None and done.usage.completion_tokens > 0
    stream = client.completions.create(
        model=COMPLETION,
        prompt="Paris is the capital of",
        max_tokens=8,
        temperature=0,
        stream=True,
    )
    streamed = "".join(c.choices[0].text for c in stream if c.choices)
    assert streamed == done.choices[0].text


def test_a_model_of_the_other_mode_is_a_400_naming_model(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as chat_on_base:
        client.chat.completions.create(model=COMPLETION, messages=PARIS)  # type: ignore[arg-type]
    assert chat_on_base.value.param == "model"  # type: ignore[attr-defined]
    assert "completions" in chat_on_base.value.message
    with pytest.raises(openai.BadRequestError) as complete_on_chat:
        client.completions.create(model=CHAT, prompt="Hello")
    assert complete_on_chat.value.param == "model"  # type: ignore[attr-defined]


def test_a_failed_prediction_is_an_openai_error_plain_and_streamed(client: openai.OpenAI) -> None:
    too_long: Any = [{"role": "user", "content": "word " * 3000}]  # > the 2,048-token context
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=CHAT, messages=too_long, max_tokens=4)
    assert refused.value.code == "invalid_input"
    assert "2048 tokens of context" in refused.value.message
    assert refused.value.response.headers["x-should-retry"] == "false"
    stream = client.chat.completions.create(
        model=CHAT, messages=too_long, max_tokens=4, stream=True
    )
    with pytest.raises(openai.APIError) as mid_stream:
        list(stream)
    assert "2048 tokens of context" in mid_stream.value.message
    assert mid_stream.value.code == "invalid_input"


# -- embeddings ----------------------------------------------------------------------------


def test_embeddings_float_and_base64_agree(client: openai.OpenAI) -> None:
    texts = ["오늘 날씨가 정말 좋네요", "오늘은 날씨가 아주 맑습니다", "주식 시장이 폭락했다"]
    floats = client.embeddings.create(model=E5, input=texts, encoding_format="float")
    assert floats.object == "list" and floats.model == E5
    assert [d.index for d in floats.data] == [0, 1, 2]
    vectors = np.array([d.embedding for d in floats.data])
    assert vectors.shape == (3, 384)
    assert floats.usage.prompt_tokens > 0
    assert floats.usage.total_tokens == floats.usage.prompt_tokens
    raw = client.embeddings.create(model=E5, input=texts, encoding_format="base64")
    decoded = np.array(
        [np.frombuffer(base64.b64decode(str(d.embedding)), dtype="<f4") for d in raw.data]
    )
    np.testing.assert_allclose(decoded, vectors, rtol=1e-6)
    # the SDK's default: it asks for base64 and decodes it itself
    default = client.embeddings.create(model=E5, input=texts[0])
    np.testing.assert_allclose(default.data[0].embedding, vectors[0], rtol=1e-6)
    cosine = vectors @ vectors.T  # normalised vectors
    assert cosine[0, 1] > cosine[0, 2] + 0.05, cosine
    with pytest.raises(openai.BadRequestError) as shorter:
        client.embeddings.create(model=E5, input="hello", dimensions=128)
    assert shorter.value.param == "dimensions"  # type: ignore[attr-defined]


# -- models ----------------------------------------------------------------------------------


def test_models_list_and_retrieve_ids_with_a_slash(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert CHAT in ids and E5 in ids and COMPLETION in ids
    model = client.models.retrieve(CHAT)
    assert (model.id, model.object, model.owned_by) == (CHAT, "model", "HuggingFaceTB")
    assert model.created > 0
    with pytest.raises(openai.NotFoundError) as unknown:
        client.models.retrieve("nobody/no-such-model")
    assert unknown.value.code == "model_not_found"


# -- audio ----------------------------------------------------------------------------------


def test_speech_then_transcription_recovers_the_words(client: openai.OpenAI) -> None:
    sentence = "The quick brown fox jumps over the lazy dog."
    speech = client.audio.speech.create(
        model="tts-1", voice="alloy", input=sentence, response_format="wav"
    )
    assert speech.response.headers["content-type"] == "audio/wav"
    audio = speech.read()
    with wave.open(io.BytesIO(audio)) as w:
        assert w.getnframes() / w.getframerate() > 1.0
    text = client.audio.transcriptions.create(model="whisper-1", file=("fox.wav", audio))
    # piper's voice varies a little from run to run: whisper tiny may mishear a word
    assert word_error_rate(words(sentence), words(text.text)) <= 0.2, text.text
    verbose = client.audio.transcriptions.create(
        model="openai/whisper-tiny.en",
        file=("fox.wav", audio),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert verbose.language == "english" and verbose.duration > 1.0
    assert verbose.segments and verbose.segments[0].end > 0
    assert verbose.words and any(w.word.lower().startswith("fox") for w in verbose.words)
    srt = client.audio.transcriptions.create(
        model="whisper-1", file=("fox.wav", audio), response_format="srt"
    )
    assert str(srt).startswith("1\n00:00:0") and "-->" in str(srt)


def test_speech_formats_and_voices(client: openai.OpenAI) -> None:
    mp3 = client.audio.speech.create(model="tts-1", voice="alloy", input="Hello there.")
    assert mp3.response.headers["content-type"] == "audio/mpeg"
    assert mp3.read()[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3")
    ogg = client.audio.speech.create(
        model="espeak-ng/espeak-ng", voice="f1", input="Hello there.", response_format="opus"
    )
    assert ogg.response.headers["content-type"] == "audio/ogg"
    assert ogg.read()[:4] == b"OggS"
    with pytest.raises(openai.BadRequestError) as voice:
        client.audio.speech.create(model="espeak-ng/espeak-ng", voice="nobody", input="Hi")  # type: ignore[arg-type]
    assert voice.value.param == "voice"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as fmt:
        client.audio.speech.create(model="tts-1", voice="alloy", input="Hi", response_format="aac")
    assert fmt.value.param == "response_format"  # type: ignore[attr-defined]


# -- images ----------------------------------------------------------------------------------


def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG)
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_images_default_model_unavailable_and_dcgan_faces(
    client: openai.OpenAI, server: Server
) -> None:
    with pytest.raises(openai.BadRequestError) as default:
        client.images.generate(prompt="a red bicycle")
    assert default.value.param == "model"  # type: ignore[attr-defined]
    assert "genyard/text-to-image" in default.value.message
    assert "unavailable" in default.value.message
    faces = client.images.generate(model="chienliu/dcgan-faces-64", prompt="a face", n=2)
    assert faces.data is not None and len(faces.data) == 2
    for image in faces.data:
        assert _png_size(base64.b64decode(image.b64_json or "")) == (64, 64)
    linked = client.images.generate(
        model="chienliu/dcgan-faces-64", prompt="a face", response_format="url"
    )
    assert linked.data is not None and linked.data[0].url
    assert _png_size(httpx.get(linked.data[0].url).content) == (64, 64)
    with pytest.raises(openai.BadRequestError) as size:
        client.images.generate(model="chienliu/dcgan-faces-64", prompt="x", size="1024x1024")
    assert size.value.param == "size"  # type: ignore[attr-defined]


# -- errors -----------------------------------------------------------------------------------


def test_features_the_model_lacks_are_400s_naming_the_field(client: openai.OpenAI) -> None:
    tool: Any = {"type": "function", "function": {"name": "weather", "parameters": {}}}
    with pytest.raises(openai.BadRequestError) as tools:
        client.chat.completions.create(model=CHAT, messages=PARIS, tools=[tool])  # type: ignore[arg-type]
    assert tools.value.param == "tools"  # type: ignore[attr-defined]
    assert tools.value.type == "invalid_request_error"  # type: ignore[attr-defined]
    assert tools.value.response.headers["x-should-retry"] == "false"
    with pytest.raises(openai.BadRequestError) as json_mode:
        client.chat.completions.create(
            model=CHAT,
            messages=PARIS,  # type: ignore[arg-type]
            response_format={"type": "json_object"},
        )
    assert json_mode.value.param == "response_format"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as hot:
        client.chat.completions.create(model=CHAT, messages=PARIS, temperature=3)  # type: ignore[arg-type]
    assert hot.value.param == "temperature"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as many:
        client.chat.completions.create(model=CHAT, messages=PARIS, n=2)  # type: ignore[arg-type]
    assert many.value.param == "n"  # type: ignore[attr-defined]
    text = client.chat.completions.create(
        model=CHAT,
        messages=PARIS,  # type: ignore[arg-type]
        max_tokens=4,
        response_format={"type": "text"},
    )
    assert text.choices[0].message.content


def test_keys_scopes_and_unknown_things(
    client: openai.OpenAI, server: Server, http: httpx.Client
) -> None:
    with pytest.raises(openai.AuthenticationError) as wrong:
        sdk(server, "gy_live_" + "0" * 40).models.list()
    assert wrong.value.code == "invalid_api_key"
    assert "Incorrect API key provided: gy_liv*" in wrong.value.message
    missing = httpx.get(f"{server.url}/llm/openai/v1/models")
    assert missing.status_code == 401
    assert missing.json()["error"]["message"].startswith("You didn't provide an API key")
    made = http.post("/v1/keys", json={"name": "reader", "scopes": ["read"]})
    assert made.status_code == 201, made.text
    reader = sdk(server, made.json()["key"])
    assert any(m.id == CHAT for m in reader.models.list())
    with pytest.raises(openai.PermissionDeniedError) as denied:
        reader.chat.completions.create(model=CHAT, messages=PARIS)  # type: ignore[arg-type]
    assert "generate" in denied.value.message
    with pytest.raises(openai.NotFoundError) as unknown_model:
        client.chat.completions.create(model="nobody/nothing", messages=PARIS)  # type: ignore[arg-type]
    assert unknown_model.value.code == "model_not_found"
    assert unknown_model.value.param == "model"  # type: ignore[attr-defined]
    route = http.post("/llm/openai/v1/assistants", json={})
    assert route.status_code == 404
    assert set(route.json()["error"]) == {"message", "type", "param", "code"}


def test_an_account_without_credits_gets_402_insufficient_quota(server: Server) -> None:
    server.cli("users", "create", "broke")
    key = server.cli("keys", "create", "--user", "broke").stdout.strip().splitlines()[-1]
    with pytest.raises(openai.APIStatusError) as short:
        sdk(server, key).chat.completions.create(model=CHAT, messages=PARIS)  # type: ignore[arg-type]
    assert type(short.value) is openai.APIStatusError  # the SDK has no class for 402
    assert short.value.status_code == 402
    body: Any = short.value.body
    assert body["type"] == "insufficient_quota" and body["code"] == "insufficient_quota"
    assert short.value.response.headers["x-should-retry"] == "false"


# -- limits: 429 and 504 (a server of their own) ------------------------------------------------

TIERS = "free=3/100/1000;basic=60/2000/20000;pro=120/5000/50000;enterprise=300/20000/200000"


def test_rate_limit_and_timeout(make_server: Callable[..., Server]) -> None:
    server = make_server(
        "strict",
        GENYARD_LLM_WAIT_SECONDS="1",
        GENYARD_RATE_LIMIT_TIERS=TIERS,
    ).start()
    # 429: a free-tier key past 3 requests a minute (the admin is exempt)
    server.cli("users", "create", "eve", "--tier", "free")
    key = server.cli("keys", "create", "--user", "eve").stdout.strip().splitlines()[-1]
    eve = sdk(server, key)
    with pytest.raises(openai.RateLimitError) as limited:
        for _ in range(4):
            eve.models.list()
    assert limited.value.code == "rate_limit_exceeded"
    assert int(limited.value.response.headers["retry-after"]) > 0
    assert limited.value.response.headers["x-should-retry"] == "true"
    # 504: a long answer cannot finish within GENYARD_LLM_WAIT_SECONDS=1; the job is
    # canceled and its hold released
    admin = sdk(server, server.admin_key)
    story: Any = [{"role": "user", "content": "Write a very long story about a dragon."}]
    with pytest.raises(openai.InternalServerError) as slow:
        admin.chat.completions.create(model=CHAT, messages=story, max_tokens=2048)
    assert slow.value.status_code == 504
    assert slow.value.code == "timeout"
    assert slow.value.response.headers["x-should-retry"] == "false"
    job_id = slow.value.response.headers["x-genyard-prediction-id"]
    assert job_id in slow.value.message
    with server.client(server.admin_key) as http:
        job = http.get(f"/v1/predictions/{job_id}").json()
        assert job["status"] == "canceled", job
        assert job["error"]["code"] == "timeout"
        assert job["usage"]["credits_charged"] == 0
        assert http.get("/v1/credits/balance").json()["held"] == 0
