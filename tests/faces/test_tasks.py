"""The tasks face (evolink-video-upscale.txt) against a real ``genyard serve``: submit a
video upscale, poll it to ``completed`` on the real Real-ESRGAN video upscaler, and
receive its HTTPS callback (a receiver with a test CA) after billing settled; the retry
schedule, cancel, and every documented error in Evolink's shape.

One server and one HTTPS receiver per module (the receiver also serves the input
videos). Each test uses callback paths of its own and waits for its tasks to end, so
the account's balance is quiet between tests.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from e2e_support import Server

from genyard.providers.local.realesrgan_video import RealEsrganVideoProvider
from media_files import make_clip
from receivers import Answer, Receiver, Request, ThreadedReceiver, tls_context

pytestmark = pytest.mark.e2e

MODEL = "topaz-video-upscale"
RUNS_AS = "xinntao/realesrgan-video"
TASK_ID = re.compile(r"^task-unified-(\d{10})-[a-z0-9]{8}$")
PRICE_PER_SECOND = 0.048  # catalog/realesrgan-video.toml
HOLD = 1.44  # the hold: the longest video taken (30 s)
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error"}
upscaler = RealEsrganVideoProvider().availability()
needs_upscaler = pytest.mark.skipif(
    not upscaler.available, reason=f"the video upscaler cannot run here: {upscaler.reason}"
)
model_test = pytest.mark.sqlite_only(reason="model tests run on one database")


# -- media, receiver, server -------------------------------------------------------------


def probe(data: bytes, tmp: Path) -> dict[str, Any]:
    path = tmp / f"{uuid.uuid4().hex}.mp4"
    path.write_bytes(data)
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format",
         str(path)],
        capture_output=True, check=True,
    )  # fmt: skip
    info: dict[str, Any] = json.loads(done.stdout)
    return info


class Web:
    """The module's HTTPS receiver: serves the clips and takes callbacks, per path."""

    def __init__(self, thread: ThreadedReceiver, receiver: Receiver) -> None:
        self.thread = thread
        self.receiver = receiver
        self.files: dict[str, bytes] = {}
        self.scripts: dict[str, Callable[[Request], Answer]] = {}

    def answer(self, request: Request) -> Answer:
        if request.path in self.files:
            return Answer(200, {"Content-Type": "video/mp4"}, self.files[request.path])
        script = self.scripts.get(request.path)
        return script(request) if script else Answer(404, {}, b"no")

    def url(self, path: str) -> str:
        return self.receiver.url(path)

    def callback(self, script: Callable[[Request], Answer] | None = None) -> str:
        """A fresh callback path (answered 200 unless ``script`` says otherwise)."""
        path = f"/callbacks/{uuid.uuid4().hex}"
        self.scripts[path] = script or (lambda request: Answer(200, {}, b"ok"))
        return path

    def calls(self, path: str) -> list[Request]:
        return [r for r in self.receiver.requests if r.path == path]

    def wait_calls(self, path: str, count: int, timeout: float = 30) -> list[Request]:
        deadline = time.monotonic() + timeout
        while len(self.calls(path)) < count:
            assert time.monotonic() < deadline, f"{path} got {len(self.calls(path))} calls"
            time.sleep(0.05)
        return self.calls(path)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def web(ca: trustme.CA) -> Iterator[Web]:
    thread = ThreadedReceiver("127.0.0.1", tls_context(ca, "127.0.0.1"))
    with thread as receiver:
        web = Web(thread, receiver)
        receiver.answer = web.answer
        yield web


@pytest.fixture(scope="module")
def server(
    module_server_factory: Callable[..., Server],
    ca: trustme.CA,
    tmp_path_factory: pytest.TempPathFactory,
) -> Server:
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return module_server_factory(
        GENYARD_OUTBOUND_ALLOWLIST="127.0.0.1/32",
        GENYARD_OUTBOUND_CA_FILE=str(ca_file),
        # Native webhooks retry after 5 s here; task callbacks keep the seed's 1, 2, 4 s.
        GENYARD_WEBHOOK_RETRY_DELAYS="5,5,5",
    )


@pytest.fixture(scope="module")
def clips(web: Web, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """URLs of the input videos: ``tiny`` (32x32, 1 s, 8 fps) and ``long`` (160x120, 4 s,
    25 fps: well over a few seconds of work, to be canceled)."""
    tmp = tmp_path_factory.mktemp("clips")
    web.files["/media/tiny.mp4"] = make_clip(
        tmp / "tiny.mp4", size="32x32", rate=8, seconds=1
    ).read_bytes()
    web.files["/media/long.mp4"] = make_clip(
        tmp / "long.mp4", size="160x120", rate=25, seconds=4
    ).read_bytes()
    return {"tiny": web.url("/media/tiny.mp4"), "long": web.url("/media/long.mp4")}


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    """A client with the admin key as the seed sends it (``Authorization: Bearer``)."""
    with server.client(server.admin_key, bearer=True) as client:
        yield client


# -- helpers -----------------------------------------------------------------------------


def submit(http: httpx.Client, **body: Any) -> dict[str, Any]:
    response = http.post("/v1/videos/generations", json={"model": MODEL, **body})
    assert response.status_code == 200, response.text
    task: dict[str, Any] = response.json()
    return task


def get(http: httpx.Client, task_id: str) -> dict[str, Any]:
    response = http.get(f"/v1/tasks/{task_id}")
    assert response.status_code == 200, response.text
    task: dict[str, Any] = response.json()
    return task


def poll(
    http: httpx.Client, task_id: str, until: Callable[[dict[str, Any]], bool], timeout: float = 90
) -> list[dict[str, Any]]:
    """Every state seen until ``until`` holds."""
    deadline = time.monotonic() + timeout
    seen = [get(http, task_id)]
    while not until(seen[-1]):
        assert time.monotonic() < deadline, f"{task_id} stuck: {seen[-1]}"
        time.sleep(0.1)
        seen.append(get(http, task_id))
    return seen


def ended(task: dict[str, Any]) -> bool:
    return task["status"] in ("completed", "failed")


def balance(http: httpx.Client) -> dict[str, Any]:
    body: dict[str, Any] = http.get("/v1/credits/balance").json()
    return body


def assert_error(response: httpx.Response, status: int, param: str | None = None) -> str:
    """An error in Evolink's shape; returns its message."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) <= {"code", "message", "type", "param"}, error
    assert isinstance(error["code"], str) and error["code"], error
    assert error["type"] == ERROR_TYPES[status], error
    if param is not None:
        assert error.get("param") == param, error
    message: str = error["message"]
    return message


# -- the happy path ----------------------------------------------------------------------


@needs_upscaler
@model_test
def test_upscale_task_completes_and_calls_back_once_after_billing(
    server: Server, web: Web, clips: dict[str, str], http: httpx.Client, tmp_path: Path
) -> None:
    before = balance(http)
    at_callback: list[dict[str, Any]] = []

    def take(request: Request) -> Answer:
        # What the account shows at the moment the callback arrives.
        with server.client(server.admin_key) as peek:
            at_callback.append(balance(peek))
        return Answer(200, {}, b"ok")

    path = web.callback(take)
    started = time.time()
    task = submit(
        http, video_urls=[clips["tiny"]], model_params={"scale": 2}, callback_url=web.url(path)
    )

    match = TASK_ID.match(task["id"])
    assert match, task["id"]
    assert task["created"] == int(match.group(1))
    assert started - 2 <= task["created"] <= time.time() + 1
    assert task["object"] == "video.generation.task"
    assert task["model"] == RUNS_AS  # the model that runs, not Topaz
    assert task["type"] == "video"
    assert task["status"] in ("pending", "processing")
    assert 0 <= task["progress"] <= 100
    info = task["task_info"]
    assert info["can_cancel"] is True
    assert isinstance(info["estimated_time"], int) and info["estimated_time"] > 0
    assert info["video_duration"] == 0  # measured when the upscaler reads the video
    assert task["usage"] == {
        "billing_rule": "per_second",
        "credits_reserved": HOLD,
        "user_group": "default",
    }
    assert "results" not in task and "error" not in task

    seen = poll(http, task["id"], ended)
    final = seen[-1]
    assert final["status"] == "completed", final
    progress = [t["progress"] for t in seen]
    assert progress == sorted(progress) and progress[-1] == 100
    assert final["task_info"]["can_cancel"] is False
    duration = final["task_info"]["video_duration"]
    assert duration == pytest.approx(1.0, abs=0.1)
    charged = final["usage"]["credits_charged"]
    assert charged == pytest.approx(PRICE_PER_SECOND * duration, abs=1e-6)
    assert final["usage"]["credits_reserved"] == HOLD

    # The output: twice as wide and tall, as long, with the audio kept.
    [url] = final["results"]
    video = httpx.get(url, timeout=30)
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    streams = {s["codec_type"]: s for s in probe(video.content, tmp_path)["streams"]}
    assert (streams["video"]["width"], streams["video"]["height"]) == (64, 64)
    assert float(streams["video"]["duration"]) == pytest.approx(1.0, abs=0.15)
    assert "audio" in streams

    # The callback: once, the task as GET shows it, sent after the charge was settled.
    [call] = web.wait_calls(path, 1)
    assert call.method == "POST" and call.headers["content-type"] == "application/json"
    assert json.loads(call.body) == get(http, task["id"]) == final
    time.sleep(1.5)
    assert len(web.calls(path)) == 1
    [then] = at_callback
    assert then["held"] == 0
    assert then["total"] == pytest.approx(before["total"] - charged, abs=1e-6)
    newest = http.get("/v1/credits/transactions", params={"type": "spend"}).json()["data"][0]
    assert abs(newest["amount"]) == pytest.approx(charged, abs=1e-6)
    assert newest["balance_after"] == pytest.approx(then["total"], abs=1e-6)


@needs_upscaler
@model_test
def test_scale_from_model_params_and_the_upscale_factor_synonym(
    server: Server, clips: dict[str, str], http: httpx.Client, tmp_path: Path
) -> None:
    task = submit(http, video_urls=[clips["tiny"]], model_params={"upscale_factor": 3})
    final = poll(http, task["id"], ended)[-1]
    assert final["status"] == "completed", final
    video = httpx.get(final["results"][0], timeout=30).content
    streams = {s["codec_type"]: s for s in probe(video, tmp_path)["streams"]}
    assert (streams["video"]["width"], streams["video"]["height"]) == (96, 96)


# -- callbacks: retries, failures, cancel ------------------------------------------------


@needs_upscaler  # submits need the model available
def test_a_failed_task_calls_back_with_retries_after_1_and_2_seconds(
    server: Server, web: Web, http: httpx.Client
) -> None:
    answers = iter([500, 500, 200])
    path = web.callback(lambda request: Answer(next(answers), {}, b"x"))
    # The video is not there: the task fails when the worker fetches it.
    task = submit(http, video_urls=[web.url("/media/missing.mp4")], callback_url=web.url(path))
    final = poll(http, task["id"], ended, timeout=30)[-1]
    assert final["status"] == "failed"
    assert final["error"]["code"] == "invalid_input", final
    assert final["usage"]["credits_charged"] == 0
    assert final["task_info"]["can_cancel"] is False
    first, second, third = web.wait_calls(path, 3, timeout=20)
    assert 0.9 <= second.at - first.at < 1.9
    assert 1.9 <= third.at - second.at < 2.9
    assert first.body == second.body == third.body
    assert json.loads(third.body) == get(http, task["id"])
    assert first.headers["webhook-id"] == third.headers["webhook-id"]
    time.sleep(1.0)
    assert len(web.calls(path)) == 3  # delivered: no more tries


@needs_upscaler
def test_cancel_fails_the_task_with_canceled_releases_the_hold_and_calls_back(
    server: Server, web: Web, clips: dict[str, str], http: httpx.Client
) -> None:
    before = balance(http)
    path = web.callback()
    task = submit(http, video_urls=[clips["long"]], callback_url=web.url(path))
    assert balance(http)["held"] == pytest.approx(before["held"] + HOLD)
    poll(http, task["id"], lambda t: t["status"] != "pending", timeout=30)

    response = http.post(f"/v1/tasks/{task['id']}/cancel")
    assert response.status_code == 200, response.text
    canceled = response.json()
    assert canceled["status"] == "failed"
    assert canceled["error"]["code"] == "canceled"
    assert canceled["task_info"]["can_cancel"] is False
    assert canceled["usage"]["credits_charged"] == 0
    assert get(http, task["id"]) == canceled
    after = balance(http)
    assert after["held"] == before["held"]
    assert after["total"] == pytest.approx(before["total"])

    [call] = web.wait_calls(path, 1)
    assert json.loads(call.body) == canceled
    again = http.post(f"/v1/tasks/{task['id']}/cancel")
    assert again.status_code == 409, again.text
    assert again.json()["error"]["type"] == "invalid_request_error"
    assert "already ended" in again.json()["error"]["message"]
    time.sleep(1.0)
    assert len(web.calls(path)) == 1


# -- errors ------------------------------------------------------------------------------


@needs_upscaler  # submits need the model available
def test_callback_url_rules(server: Server, web: Web, http: httpx.Client) -> None:
    video = web.url("/media/tiny.mp4")
    held = balance(http)["held"]

    def refused(callback: str) -> str:
        response = http.post(
            "/v1/videos/generations",
            json={"model": MODEL, "video_urls": [video], "callback_url": callback},
        )
        return assert_error(response, 400, "callback_url")

    assert "HTTPS" in refused("http://example.com/hook")
    assert "GENYARD_OUTBOUND_ALLOWLIST" in refused("https://10.1.2.3/hook")
    assert "GENYARD_OUTBOUND_ALLOWLIST" in refused("https://192.168.0.7:8443/hook")
    assert "GENYARD_OUTBOUND_ALLOWLIST" in refused("https://169.254.169.254/latest")
    assert "2048" in refused("https://example.com/" + "a" * 2030)
    assert balance(http)["held"] == held  # nothing was queued


@needs_upscaler  # submits need the model available
def test_body_errors_name_the_field(server: Server, http: httpx.Client) -> None:
    def refused(body: dict[str, Any], param: str) -> str:
        response = http.post("/v1/videos/generations", json={"model": MODEL, **body})
        return assert_error(response, 400, param)

    assert "exactly one" in refused({"video_urls": []}, "video_urls")
    two = ["https://example.com/a.mp4", "https://example.com/b.mp4"]
    assert "exactly one" in refused({"video_urls": two}, "video_urls")
    refused({}, "video_urls")
    assert ".mp4" in refused({"video_urls": ["https://example.com/a.avi"]}, "video_urls[0]")
    refused({"video_urls": ["ftp://example.com/a.mp4"]}, "video_urls[0]")
    refused(
        {"video_urls": ["https://example.com/a.mp4"], "model_params": {"scale": 5}},
        "model_params.scale",
    )
    refused(
        {"video_urls": ["https://example.com/a.mp4"], "model_params": {"upscale_factor": 1}},
        "model_params.scale",
    )
    assert "not a known field" in refused(
        {"video_urls": ["https://example.com/a.mp4"], "model_params": {"denoise": 5}},
        "model_params.denoise",
    )
    refused({"video_urls": ["https://example.com/a.mp4"], "model": "nobody/nothing"}, "model")
    refused({"video_urls": ["https://example.com/a.mp4"], "model": "genyard/diagnostic"}, "model")
    refused({"video_urls": ["https://example.com/a.mp4"], "prompt": "x"}, "prompt")


def test_unknown_and_malformed_task_ids(server: Server, http: httpx.Client) -> None:
    missing = "task-unified-1757169743-7cvnl5zw"
    response = http.get(f"/v1/tasks/{missing}")
    assert_error(response, 404, "task_id")
    assert response.json()["error"]["code"] == "task_not_found"
    assert_error(http.post(f"/v1/tasks/{missing}/cancel"), 404, "task_id")
    response = http.get("/v1/tasks/pred_abc")
    assert_error(response, 400, "task_id")
    assert response.json()["error"]["code"] == "invalid_task_id"


def test_wrong_or_missing_key_is_a_401_in_the_face_shape(server: Server) -> None:
    task = "/v1/tasks/task-unified-1757169743-7cvnl5zw"
    body = {"model": MODEL, "video_urls": ["https://example.com/a.mp4"]}
    with server.client("gy_live_" + "0" * 40, bearer=True) as wrong:
        assert_error(wrong.get(task), 401)
        assert_error(wrong.post("/v1/videos/generations", json=body), 401)
    with server.client() as nobody:
        assert_error(nobody.get(task), 401)
        assert_error(nobody.post(f"{task}/cancel"), 401)
