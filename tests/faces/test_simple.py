"""The simple ``/api`` face (ai-omakase-developer-docs.txt) against a real ``genyard
serve`` on the bundled models, with httpx as the client (the seed has no SDK).

Every route's happy path runs a real model and checks what it made: the chat names
Paris, a Korean paraphrase embeds closer than an unrelated sentence, rerank puts the
relevant passages first, piper's English is heard back by whisper through ``/api/stt``,
the music is as long as asked and not silent, the OCR reads the rendered words. Every
documented error is checked in the face's ``{"error": "message"}`` shape, and a
second server with a tiny execution limit, rate limit and body caps forces the 504
(its job canceled with code ``timeout``, its hold released), the 429 and the 413s.
The real models run once: SQLite only.
"""

from __future__ import annotations

import io
import math
import re
import struct
import subprocess
import tempfile
import wave
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from e2e_support import Server
from PIL import Image, ImageDraw, ImageFont

from genyard.api.face_calls import job_failure
from genyard.api.simple import languages
from genyard.app import create_app
from genyard.config import Settings
from genyard.domain.jobs import Job, JobStatus
from genyard.errors import InternalError, JobErrorCode, RateLimited

pytestmark = pytest.mark.sqlite_only(reason="real models run once; the queue is tested elsewhere")

PIPER = "rhasspy/piper-en_US-joe-medium"
ESPEAK = "espeak-ng/espeak-ng"
WHISPER = "openai/whisper-tiny.en"
VOSK = "alphacephei/vosk-model-small-ko"
ENGLISH = "The weather was cold and windy this morning. Please bring a warm coat."
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
FFPROBE = ("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0")
TIERS = "free=3/500/5000;basic=60/2000/20000;pro=120/5000/50000;enterprise=300/20000/200000"


@pytest.fixture(scope="module")
def server(module_server_factory: Any) -> Server:
    server: Server = module_server_factory()
    return server


@pytest.fixture(scope="module")
def api(server: Server) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {server.admin_key}"}  # the seed's header
    with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
        yield client


def error_of(response: httpx.Response, status: int) -> str:
    """The message of an error answer, after checking its status and exact shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str), body
    assert response.headers["content-type"].startswith("application/json")
    message: str = body["error"]
    return message


def prediction(api: httpx.Client, response: httpx.Response) -> dict[str, Any]:
    """The prediction behind an answer (``X-Prediction-Id``), through the native API."""
    found = api.get(f"/v1/predictions/{response.headers['x-prediction-id']}")
    assert found.status_code == 200, found.text
    body: dict[str, Any] = found.json()
    return body


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def audio_seconds(data: bytes, suffix: str) -> float:
    with tempfile.NamedTemporaryFile(suffix=suffix) as file:
        file.write(data)
        file.flush()
        probe = subprocess.run(
            [*FFPROBE, file.name],
            capture_output=True,
            check=True,
        )
    return float(probe.stdout.strip())


def wav_stats(data: bytes) -> tuple[float, float]:
    """(seconds, RMS of the 16-bit samples in [0, 1]) of a PCM WAV."""
    with wave.open(io.BytesIO(data)) as wav:
        assert wav.getsampwidth() == 2
        frames = wav.readframes(wav.getnframes())
        seconds = wav.getnframes() / wav.getframerate()
    samples = struct.unpack(f"<{len(frames) // 2}h", frames)
    rms = math.sqrt(sum(s * s for s in samples) / max(len(samples), 1)) / 32768
    return seconds, rms


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


# -- text ------------------------------------------------------------------------------


def test_chat_names_paris(api: httpx.Client) -> None:
    answer = api.post(
        "/api/chat", json={"input": "What is the capital of France?", "temperature": 0}
    )
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == {"text"}
    assert "Paris" in answer.json()["text"]
    job = prediction(api, answer)
    assert job["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert job["input"]["messages"] == [
        {"role": "user", "content": "What is the capital of France?"}
    ]

    # Left out, the temperature is the seed's 0.1 (not the model's own default, 0).
    default = api.post("/api/chat", json={"input": "Say hello in one short sentence."})
    assert default.status_code == 200, default.text
    assert default.json()["text"].strip()
    assert prediction(api, default)["input"]["temperature"] == 0.1


def test_embedding_vectors_and_input_type(api: httpx.Client) -> None:
    def embed(body: dict[str, Any]) -> tuple[list[float], dict[str, Any]]:
        answer = api.post("/api/embedding", json=body)
        assert answer.status_code == 200, answer.text
        assert set(answer.json()) == {"embeddingVector"}
        return answer.json()["embeddingVector"], prediction(api, answer)

    query, job = embed({"input": "오늘 날씨가 정말 좋네요.", "input_type": "query"})
    assert job["input"]["task"] == "query"  # e5's "query: " prefix
    paraphrase, job = embed({"text": "오늘은 날씨가 참 맑고 좋습니다.", "input_type": "passage"})
    assert job["input"]["task"] == "passage"
    unrelated, job = embed({"input": "주식 시장이 크게 하락했습니다.", "input_type": "string"})
    assert job["input"]["task"] == "passage"  # the seed's "string": the model's default
    assert len(query) == len(paraphrase) == len(unrelated) == 384
    assert dot(query, paraphrase) > dot(query, unrelated)
    assert math.isclose(dot(query, query), 1.0, abs_tol=1e-3)

    assert "input" in error_of(api.post("/api/embedding", json={"input_type": "query"}), 400)
    assert error_of(api.post("/api/embedding", json={"input": ["a", "b"]}), 400)


def test_rerank_orders_by_relevance(api: httpx.Client) -> None:
    passages = [
        "Seoul's subway starts running at half past five in the morning.",
        "Cats like food rich in protein, such as fish and chicken.",
        "고양이는 생선과 닭고기 같은 단백질이 풍부한 음식을 좋아합니다.",
    ]
    answer = api.post(
        "/api/rerank", json={"query": "What should I feed my cat?", "input": passages}
    )
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["index"] for r in results][-1] == 0  # the subway is least relevant
    assert {r["index"] for r in results[:2]} == {1, 2}
    assert [r["document"] for r in results] == [passages[r["index"]] for r in results]
    assert results[0]["score"] >= results[1]["score"] >= results[2]["score"]


def test_rerank_errors(api: httpx.Client) -> None:
    assert "query" in error_of(api.post("/api/rerank", json={"query": "", "input": ["a"]}), 400)
    assert "query" in error_of(api.post("/api/rerank", json={"query": "  ", "input": ["a"]}), 400)
    assert "query" in error_of(api.post("/api/rerank", json={"input": ["a"]}), 400)
    message = error_of(api.post("/api/rerank", json={"query": "q", "input": ["a", 2]}), 400)
    assert "input[1]" in message and "string" in message
    assert "input" in error_of(api.post("/api/rerank", json={"query": "q", "input": "a"}), 400)
    assert "input" in error_of(api.post("/api/rerank", json={"query": "q", "input": []}), 400)


# -- speech ----------------------------------------------------------------------------


def test_tts_speakers(api: httpx.Client) -> None:
    listed = api.get("/api/tts")
    assert listed.status_code == 200, listed.text
    speakers = {s["id"]: s for s in listed.json()["speakers"]}
    assert speakers["joe"]["model"] == PIPER and "en" in speakers["joe"]["languages"]
    assert speakers["default"]["model"] == ESPEAK and "ko" in speakers["default"]["languages"]
    assert {"m1", "f1"} <= set(speakers)
    languages = {lang["code"]: lang for lang in listed.json()["languages"]}
    assert languages["ko"] == {
        "code": "ko",
        "name": "Korean",
        "speaker": "default",
        "model": ESPEAK,
    }
    assert languages["en"]["model"] == PIPER and languages["en"]["speaker"] == "joe"
    assert languages["ja"]["model"] == ESPEAK
    assert languages["en-GB"]["model"] == ESPEAK  # British: not piper's American voice


def test_tts_english_heard_back_by_stt(api: httpx.Client) -> None:
    spoken = api.post(
        "/api/tts",
        json={"text": ENGLISH, "language": "english", "instruct": "calm", "speaker": "joe"},
    )
    assert spoken.status_code == 200, spoken.text[:300]
    assert spoken.headers["content-type"] == "audio/mpeg"
    assert prediction(api, spoken)["model"] == PIPER
    assert 3.0 < audio_seconds(spoken.content, ".mp3") < 12.0

    heard = api.post(
        "/api/stt",
        files={"file": ("speech.mp3", spoken.content, "audio/mpeg")},
        data={"language": "en", "task": "transcribe", "beam_size": "1", "vad_filter": "true"},
    )
    assert heard.status_code == 200, heard.text
    body = heard.json()
    assert {"text", "language", "duration", "segments"} <= set(body)
    assert body["language"] == "en"
    said, expected = words(body["text"]), words(ENGLISH)
    missed = [w for w in expected if w not in said]
    assert len(missed) <= 2, (body["text"], missed)
    job = prediction(api, heard)
    assert job["model"] == WHISPER
    assert job["input"]["beam_size"] == 1 and job["input"]["vad_filter"] is True


def test_tts_korean_and_its_stt(api: httpx.Client) -> None:
    spoken = api.post(
        "/api/tts",
        json={
            "text": "안녕하세요. 오늘 날씨가 정말 좋습니다.",
            "language": "korean",
            "format": "wav",
        },
    )
    assert spoken.status_code == 200, spoken.text[:300]
    assert spoken.headers["content-type"] == "audio/wav"
    job = prediction(api, spoken)
    assert job["model"] == ESPEAK and job["input"]["language"] == "ko"
    seconds, rms = wav_stats(spoken.content)
    assert 1.0 < seconds < 10.0 and rms > 0.01

    # Language left out: the script says Korean; a speaker picks espeak-ng's variant.
    guessed = api.post("/api/tts", json={"text": "감사합니다", "speaker": "f1"})
    assert guessed.status_code == 200, guessed.text[:300]
    assert guessed.headers["content-type"] == "audio/mpeg"
    job = prediction(api, guessed)
    assert (job["input"]["language"], job["input"]["speaker"]) == ("ko", "f1")

    heard = api.post(
        "/api/stt",
        files={"file": ("ko.wav", spoken.content, "audio/wav")},
        data={"language": "Korean", "beam_size": "5"},  # vosk has no beam_size: ignored
    )
    assert heard.status_code == 200, heard.text
    assert heard.json()["language"] == "ko" and isinstance(heard.json()["text"], str)
    assert prediction(api, heard)["model"] == VOSK


def test_tts_errors(api: httpx.Client) -> None:
    assert "language" in error_of(
        api.post("/api/tts", json={"text": "hi", "language": "klingon"}), 400
    )
    message = error_of(api.post("/api/tts", json={"text": "hi", "language": "xx"}), 400)
    assert "no voice" in message
    assert "ryan" in error_of(api.post("/api/tts", json={"text": "hi", "speaker": "ryan"}), 400)
    message = error_of(
        api.post("/api/tts", json={"text": "hi", "speaker": "joe", "language": "ko"}), 400
    )
    assert "joe" in message
    assert "text" in error_of(api.post("/api/tts", json={"language": "en"}), 400)


def test_stt_errors(api: httpx.Client) -> None:
    message = error_of(api.post("/api/stt", data={"language": "en"}, files={"x": ("a", b"1")}), 400)
    assert "file" in message
    assert "file" in error_of(
        api.post("/api/stt", data={"file": "not a file"}, files={"x": ("a", b"1")}), 400
    )
    wav = b"RIFF0000WAVE"
    files = {"file": ("a.wav", wav, "audio/wav")}
    assert "ja" in error_of(api.post("/api/stt", files=files, data={"language": "japanese"}), 400)
    assert "task" in error_of(api.post("/api/stt", files=files, data={"task": "translate"}), 400)
    assert "beam_size" in error_of(api.post("/api/stt", files=files, data={"beam_size": "x"}), 400)
    # Audio by its type, not by its bytes: the job fails with invalid_input -> 400.
    broken = api.post("/api/stt", files={"file": ("a.wav", b"RIFF0000WAVEnope", "audio/wav")})
    assert error_of(broken, 400)
    job = prediction(api, broken)
    assert (job["status"], job["error"]["code"]) == ("failed", "invalid_input")
    # Not audio at all: the type is refused at submit.
    assert "file" in error_of(
        api.post("/api/stt", files={"file": ("a.png", b"\x89PNG", "image/png")}), 400
    )


def test_voice_clone_and_t2i_are_clear_errors(api: httpx.Client) -> None:
    ref = {"ref_audio": ("me.wav", b"RIFF0000WAVEfmt ", "audio/wav")}
    answer = api.post(
        "/api/voice-clone",
        files=ref,
        data={"text": "안녕하세요", "language": "ko", "x_vector_only_mode": "true"},
    )
    message = error_of(answer, 503)
    assert "genyard/voice-clone is unavailable here" in message
    assert "no bundled zero-shot voice-cloning model" in message
    assert answer.headers["x-should-retry"] == "false"
    assert "ref_audio" in error_of(api.post("/api/voice-clone", data={"text": "hi"}), 400)
    assert "text" in error_of(api.post("/api/voice-clone", files=ref), 400)
    bad_language = api.post(
        "/api/voice-clone", files=ref, data={"text": "hi", "language": "French"}
    )
    assert "language" in error_of(bad_language, 400)

    message = error_of(
        api.post("/api/t2i", json={"prompt": "A mountain at sunset", "width": 512}), 503
    )
    assert "genyard/text-to-image is unavailable here" in message
    assert "no bundled text-conditioned image model" in message
    assert "width" in error_of(api.post("/api/t2i", json={"prompt": "x", "width": 100}), 400)
    assert "prompt" in error_of(api.post("/api/t2i", json={"width": 512}), 400)


# -- media -----------------------------------------------------------------------------


def test_t2m_makes_music_of_the_asked_length(api: httpx.Client) -> None:
    answer = api.post("/api/t2m", json={"prompt": "Calm piano, 90bpm", "audio_duration": 3})
    assert answer.status_code == 200, answer.text[:300]
    assert answer.headers["content-type"] == "audio/wav"
    seconds, rms = wav_stats(answer.content)
    assert abs(seconds - 3.0) < 0.05 and rms > 0.01
    assert "prompt" in error_of(api.post("/api/t2m", json={"audio_duration": 3}), 400)
    assert "audio_duration" in error_of(
        api.post("/api/t2m", json={"prompt": "x", "audio_duration": 999}), 400
    )


def test_image2text_reads_the_text(api: httpx.Client) -> None:
    image = Image.new("RGB", (640, 160), "white")
    ImageDraw.Draw(image).text(
        (20, 50), "Invoice number 4821", fill="black", font=ImageFont.truetype(FONT, 48)
    )
    png = io.BytesIO()
    image.save(png, "PNG")
    answer = api.post(
        "/api/image2text",
        files={"image": ("invoice.png", png.getvalue(), "image/png")},
        data={"prompt": "What does it say?", "temperature": "0.2"},
    )
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == {"text"}
    assert answer.json()["text"] == "Invoice number 4821"
    assert prediction(api, answer)["model"] == "tesseract-ocr/tesseract"
    assert "image" in error_of(api.post("/api/image2text", data={"prompt": "hi"}), 400)
    files = {"image": ("a.png", png.getvalue(), "image/png")}
    assert "temperature" in error_of(
        api.post("/api/image2text", files=files, data={"temperature": "3"}), 400
    )


# -- auth and the error shape ----------------------------------------------------------


def test_auth_headers_and_error_shape(server: Server, api: httpx.Client) -> None:
    key = server.admin_key
    for headers, params in (
        ({"Authorization": f"Bearer {key}"}, {}),
        ({"X-API-Key": key}, {}),
        ({"x-goog-api-key": key}, {}),
        ({}, {"key": key}),
    ):
        answer = httpx.get(f"{server.url}/api/tts", headers=headers, params=params)
        assert answer.status_code == 200, (headers, params, answer.text)
    assert "key" in error_of(httpx.get(f"{server.url}/api/tts"), 401)
    wrong = {"Authorization": "Bearer gy_live_" + "0" * 40}
    error_of(httpx.post(f"{server.url}/api/chat", headers=wrong, json={"input": "hi"}), 401)

    assert error_of(api.get("/api/nope"), 404)
    assert error_of(api.get("/api/chat"), 405)
    assert "JSON" in error_of(
        api.post("/api/chat", content=b"{nope", headers={"Content-Type": "application/json"}), 400
    )
    assert error_of(
        api.post("/api/chat", content=b"hi", headers={"Content-Type": "text/plain"}), 415
    )
    assert "input" in error_of(api.post("/api/chat", json={"input": 5}), 400)
    assert "temperature" in error_of(
        api.post("/api/chat", json={"input": "hi", "temperature": 9}), 400
    )
    assert error_of(api.post("/api/stt", json={"file": "x"}), 415)


def test_limits_504_429_413(make_server: Any) -> None:
    server: Server = make_server(
        "limits",
        GENYARD_SIMPLE_API_WAIT_SECONDS="0.5",
        GENYARD_RATE_LIMIT_TIERS=TIERS,
        GENYARD_MAX_BODY_BYTES="65536",
        GENYARD_MAX_UPLOAD_BYTES="100000",
    ).start()
    admin = server.client(server.admin_key, bearer=True)
    before = admin.get("/v1/credits/balance").json()

    # 504: three minutes of music cannot be made in half a second.
    late = admin.post("/api/t2m", json={"prompt": "Epic orchestral strings", "audio_duration": 180})
    assert "did not finish within 0.5 s" in error_of(late, 504)
    job = admin.get(f"/v1/predictions/{late.headers['x-prediction-id']}").json()
    assert job["status"] == "canceled" and job["error"]["code"] == "timeout", job
    after = admin.get("/v1/credits/balance").json()
    assert after["held"] == 0 and after["total"] == before["total"], (before, after)

    # 413: bodies past the caps (JSON routes: max_body_bytes; multipart: max_upload_bytes).
    assert error_of(admin.post("/api/chat", json={"input": "x" * 70_000}), 413)
    big = {"file": ("big.wav", b"\0" * 120_000, "audio/wav")}
    assert error_of(admin.post("/api/stt", files=big), 413)

    # 429: a free-tier key gets 3 requests a minute.
    server.cli("users", "create", "ann", "--tier", "free")
    key = server.cli("keys", "create", "--user", "ann").stdout.strip().splitlines()[-1]
    ann = server.client(key, bearer=True)
    for _ in range(3):
        assert ann.get("/api/tts").status_code == 200
    limited = ann.get("/api/tts")
    assert error_of(limited, 429)
    assert int(limited.headers["retry-after"]) >= 1


# -- units: the pieces a server cannot be made to show -----------------------------------


def test_languages_and_failures_map() -> None:
    assert [languages.normalize(v) for v in ("ko", "Korean", "한국어", "en_us", "JA", "xx1")] == [
        "ko",
        "ko",
        "ko",
        "en-US",
        "ja",
        None,
    ]
    assert languages.pick("ko-KR", {"ko"}) == "ko" and languages.pick("de", {"en"}) is None
    assert [languages.guess(t) for t in ("안녕", "こんにちは", "你好", "hello")] == [
        "ko",
        "ja",
        "zh",
        "en",
    ]
    statuses = {}
    for code in JobErrorCode:
        job = Job("pred_x", "acct", "user", "m", {}, JobStatus.FAILED, 0.0, error_code=code)
        statuses[code.value] = job_failure(job).status
    assert statuses == {
        "invalid_input": 400,
        "timeout": 504,
        "queue_timeout": 504,
        "worker_lost": 500,
        "canceled": 409,
        "provider_error": 502,
        "provider_unavailable": 503,
        "internal": 500,
    }


def test_every_error_under_api_renders_in_the_face_shape(tmp_path: Any) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    render = app.state.error_formats.for_path("/api/anything")
    answer = render(InternalError("internal error"))
    assert (answer.status_code, answer.body) == (500, b'{"error":"internal error"}')
    assert answer.headers["x-should-retry"] == "true"
    limited = render(RateLimited("slow down", retry_after=7))
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "7")
    assert app.state.error_formats.for_path("/v1/models") is not render
