"""The vision group on real engines: background removal (MediaPipe selfie segmentation in
its own Python, driven as a subprocess), DCGAN faces (torch), and the entries listed as
unavailable (voice clone, text-to-image).

``data/person.jpg`` is a face made by the DCGAN model (``data/make_person.py``) on a flat
background above a drawn torso: selfie segmentation keeps the face and the torso under it
and drops the background, while the same picture without the face is no person at all.
"""

from __future__ import annotations

import base64
import io
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from api.support import Api, ApiFactory
from api.test_files import path_of
from genyard.domain.catalog import BUNDLED_CATALOG_DIR, Catalog, ModelEntry
from genyard.errors import InvalidInput, ProviderError
from genyard.providers.base import InputFile, RunContext
from genyard.providers.local import mediapipe_client
from genyard.providers.local.background import CACHE_KEY, MediapipeSelfieProvider
from genyard.providers.local.dcgan import DcganFacesProvider
from genyard.providers.local.mediapipe_client import RunnerDied, RunnerPool, RunnerProcess
from genyard.providers.local.unavailable import UnavailableProvider
from genyard.providers.registry import ProviderRegistry
from genyard.providers.runtime import model_cache

np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")
ImageDraw = pytest.importorskip("PIL.ImageDraw")

DATA = Path(__file__).parent / "data"
BG = "google/mediapipe-selfie-segmentation"
FACES = "chienliu/dcgan-faces-64"
VOICE_CLONE = "genyard/voice-clone"
TEXT_TO_IMAGE = "genyard/text-to-image"
WAIT = {"Prefer": "wait=60"}
FACE = (96, 100, 224, 228)  # where make_person.py puts the face: left, top, right, bottom
BACKGROUND = (70, 130, 180)

CATALOG = Catalog.load([BUNDLED_CATALOG_DIR])
MEDIAPIPE_PROBLEM = mediapipe_client.runner_problem(mediapipe_client.runner_python())
needs_mediapipe = pytest.mark.skipif(
    MEDIAPIPE_PROBLEM is not None, reason=f"{MEDIAPIPE_PROBLEM}: {mediapipe_client.INSTALL_COMMAND}"
)
TORCH_PROBLEM = DcganFacesProvider().availability()
needs_torch = pytest.mark.skipif(not TORCH_PROBLEM.available, reason=str(TORCH_PROBLEM.reason))
api_test = pytest.mark.sqlite_only(reason="a model test: one database kind is enough")


def entry(model_id: str) -> ModelEntry:
    found = CATALOG.get(model_id)
    assert found is not None, model_id
    return found


def encode(image: Any, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def as_file(data: bytes, content_type: str, name: str = "picture") -> InputFile:
    return InputFile(data, content_type, name, "test://" + name)


def alpha_of(png: bytes) -> Any:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.mode == "RGBA"
    return np.asarray(image)[..., 3].astype(float) / 255


def person_without_face() -> Any:
    picture = Image.new("RGB", (320, 320), BACKGROUND)
    ImageDraw.Draw(picture).ellipse((60, 230, 260, 420), fill=(40, 40, 60))
    return picture


# -- background removal -------------------------------------------------------------------


@pytest.fixture(scope="module")
def remover() -> Iterator[MediapipeSelfieProvider]:
    provider = MediapipeSelfieProvider()
    provider.slot_plan(2)
    yield provider
    model_cache().evict(CACHE_KEY)  # closes the runner processes


def remove(
    provider: MediapipeSelfieProvider,
    image: InputFile,
    model: ModelEntry | None = None,
    **extra: Any,
) -> bytes:
    result = provider.run(model or entry(BG), {"image": image, **extra}, RunContext("t", 1))
    output = result.output["image"]
    assert output.content_type == "image/png"
    assert result.usage == {"items": 1}
    data: bytes = output.data
    return data


@needs_mediapipe
def test_a_picture_without_a_person_comes_back_transparent_at_its_size(
    remover: MediapipeSelfieProvider,
) -> None:
    flat = Image.new("RGB", (320, 240), BACKGROUND)
    gradient = Image.linear_gradient("L").resize((300, 200)).convert("RGB")
    for image, fmt, kind in ((flat, "PNG", "image/png"), (gradient, "WEBP", "image/webp")):
        png = remove(remover, as_file(encode(image, fmt), kind))
        alpha = alpha_of(png)
        assert alpha.shape == (image.height, image.width)
        assert (alpha == 0).mean() > 0.99, (kind, alpha.mean())


@needs_mediapipe
def test_the_person_stays_and_the_background_goes(remover: MediapipeSelfieProvider) -> None:
    jpeg = (DATA / "person.jpg").read_bytes()
    alpha = alpha_of(remove(remover, as_file(jpeg, "image/jpeg", "person.jpg")))
    assert alpha.shape == (320, 320)
    left, top, right, bottom = FACE
    inset = (right - left) // 4
    assert alpha[top + inset : bottom - inset, left + inset : right - inset].mean() > 0.8
    assert alpha[270:, 120:200].mean() > 0.9  # the torso under the face
    assert (alpha[:80] == 0).mean() > 0.99  # the background above the head
    assert (alpha[:, :50] == 0).mean() > 0.99 and (alpha[:, -50:] == 0).mean() > 0.99
    # without the face, the same torso is no person
    headless = alpha_of(remove(remover, as_file(encode(person_without_face(), "PNG"), "image/png")))
    assert (headless == 0).mean() > 0.99


@needs_mediapipe
def test_a_large_picture_gets_a_mask_of_its_own_size(remover: MediapipeSelfieProvider) -> None:
    # larger than the runner's MASK_SIDE: segmented small, the mask scaled back up
    big = Image.open(DATA / "person.jpg").resize((1500, 1200), Image.Resampling.BICUBIC)
    alpha = alpha_of(remove(remover, as_file(encode(big, "JPEG"), "image/jpeg")))
    assert alpha.shape == (1200, 1500)
    small = alpha_of(remove(remover, as_file((DATA / "person.jpg").read_bytes(), "image/jpeg")))
    scaled = np.asarray(Image.fromarray((small * 255).astype(np.uint8)).resize((1500, 1200)))
    assert np.abs(alpha - scaled / 255).mean() < 0.05  # the same cut-out, only larger
    assert (alpha[:300] == 0).mean() > 0.99


@needs_mediapipe
def test_threshold_soft_edges_and_the_landscape_variant(remover: MediapipeSelfieProvider) -> None:
    person = as_file((DATA / "person.jpg").read_bytes(), "image/jpeg")
    soft = alpha_of(remove(remover, person))
    hard = alpha_of(remove(remover, person, soft_edges=False))
    assert set(np.unique(hard)) <= {0.0, 1.0}
    assert ((soft > 0) & (soft < 1)).any()  # soft edges have partial opacity
    assert ((hard > 0) == (soft > 0)).all()  # the same pixels are kept
    loose = alpha_of(remove(remover, person, threshold=0.05, soft_edges=False))
    strict = alpha_of(remove(remover, person, threshold=0.99, soft_edges=False))
    assert loose.sum() > hard.sum() > strict.sum()
    wide = alpha_of(remove(remover, person, variant="landscape"))
    assert wide.shape == (320, 320)
    assert not np.array_equal(wide, soft)  # another model
    left, top, right, bottom = FACE
    assert wide[top + 32 : bottom - 32, left + 32 : right - 32].mean() > 0.5


@needs_mediapipe
def test_transparent_input_stays_transparent(remover: MediapipeSelfieProvider) -> None:
    picture = Image.open(DATA / "person.jpg").convert("RGBA")
    cleared = np.asarray(picture).copy()
    cleared[:, 160:, 3] = 0  # the right half was already transparent
    png = encode(Image.fromarray(cleared), "PNG")
    alpha = alpha_of(remove(remover, as_file(png, "image/png")))
    assert alpha[:, 160:].max() == 0
    assert alpha[150:200, 120:160].mean() > 0.8  # the left half of the face stays


@needs_mediapipe
def test_unreadable_refused_and_oversized_pictures_are_invalid_input(
    remover: MediapipeSelfieProvider,
) -> None:
    with pytest.raises(InvalidInput, match=r"input\.image"):
        remove(remover, as_file(b"not a picture at all", "image/png"))
    gif = encode(Image.new("RGB", (8, 8)), "GIF")
    with pytest.raises(InvalidInput, match="PNG, JPEG or WebP"):
        remove(remover, as_file(gif, "image/png"))
    truncated = (DATA / "person.jpg").read_bytes()[:2000]
    with pytest.raises(InvalidInput):
        remove(remover, as_file(truncated, "image/jpeg"))
    small = replace(entry(BG), capabilities={**entry(BG).capabilities, "max_pixels": 10_000})
    with pytest.raises(InvalidInput, match="at most 10000 pixels"):
        remove(remover, as_file(encode(Image.new("RGB", (101, 100)), "PNG"), "image/png"), small)
    # the runner is still fine afterwards
    tiny = as_file(encode(Image.new("RGB", (9, 7)), "PNG"), "image/png")
    assert alpha_of(remove(remover, tiny)).shape == (7, 9)


@needs_mediapipe
def test_two_overlapping_calls_get_two_runner_processes(remover: MediapipeSelfieProvider) -> None:
    person = as_file((DATA / "person.jpg").read_bytes(), "image/jpeg")
    barrier = threading.Barrier(2)
    results: list[bytes] = []

    def call() -> None:
        barrier.wait()
        for _ in range(5):
            results.append(remove(remover, person))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 10 and len(set(results)) == 1  # same picture, same bytes
    with model_cache().use(CACHE_KEY, lambda: None) as pool:
        assert isinstance(pool, RunnerPool)
        pids = pool.pids()
    assert len(pids) == 2 and all(pid != os.getpid() for pid in pids)


@pytest.fixture
def runner() -> Iterator[RunnerProcess]:
    process = RunnerProcess(mediapipe_client.runner_python())
    yield process
    process.close()


def segment(runner: RunnerProcess, data: bytes) -> tuple[dict[str, Any], bytes]:
    return runner.request({"op": "segment"}, data, timeout=30)


@needs_mediapipe
def test_the_runner_protocol_and_its_restart_after_a_crash(runner: RunnerProcess) -> None:
    reply, _ = runner.request({"op": "ping"}, timeout=30)
    first = runner.pid
    assert reply == {"ok": True, "pid": first}
    png = encode(Image.new("RGB", (40, 30), BACKGROUND), "PNG")
    reply, data = segment(runner, png)
    assert reply["ok"] and (reply["width"], reply["height"]) == (40, 30)
    assert reply["size"] == len(data) and data.startswith(b"\x89PNG")
    reply, data = segment(runner, b"junk")
    assert reply["ok"] is False and reply["error"] == "invalid_input" and data == b""
    reply, _ = runner.request({"op": "dance"}, timeout=30)
    assert reply["ok"] is False and "unknown op" in reply["message"]
    # killed while idle: the next request starts a new runner and succeeds
    runner.kill()
    assert segment(runner, png)[0]["ok"]
    second = runner.pid
    assert second not in (None, first) and runner.starts == 2
    # dying in the middle of a request fails that request only
    with pytest.raises(RunnerDied, match="exited"):
        runner.request({"op": "crash"}, timeout=30)
    assert runner.pid is None
    assert segment(runner, png)[0]["ok"]
    assert runner.pid not in (None, first, second) and runner.starts == 3


@needs_mediapipe
def test_a_runner_that_stops_reading_times_out_and_is_replaced(runner: RunnerProcess) -> None:
    runner.start()
    pid = runner.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # hung: it reads nothing more
    started = time.monotonic()
    with pytest.raises(ProviderError, match="in time"):
        runner.request({"op": "segment"}, b"x" * 4_000_000, timeout=1)  # > a pipe's buffer
    assert time.monotonic() - started < 5
    assert runner.pid is None  # the stopped process was killed
    assert runner.request({"op": "ping"}, timeout=30)[0]["ok"]
    assert runner.pid not in (None, pid)


@needs_mediapipe
def test_a_canceled_request_stops_its_runner(runner: RunnerProcess) -> None:
    runner.start()
    pid = runner.pid
    with pytest.raises(ProviderError, match="canceled"):
        runner.request({"op": "ping"}, canceled=lambda: True, timeout=30)
    assert runner.pid is None
    runner.request({"op": "ping"}, timeout=30)
    assert runner.pid not in (None, pid)


def test_availability_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mediapipe_client, "_checked", {})
    monkeypatch.setenv(mediapipe_client.PYTHON_ENV, "/nonexistent/mediapipe/bin/python")
    missing = MediapipeSelfieProvider().availability()
    assert not missing.available
    assert "/nonexistent/mediapipe/bin/python" in str(missing.reason)
    assert missing.fix == "sh scripts/install-mediapipe.sh"
    # a Python without mediapipe (genyard's own) is found out by the check
    monkeypatch.setenv(mediapipe_client.PYTHON_ENV, sys.executable)
    wrong = MediapipeSelfieProvider().availability()
    assert not wrong.available
    assert "cannot run the mediapipe runner" in str(wrong.reason)
    assert wrong.fix == "sh scripts/install-mediapipe.sh"


@needs_mediapipe
@api_test
async def test_background_removal_through_the_api(make_api: ApiFactory) -> None:
    jpeg = (DATA / "person.jpg").read_bytes()
    image = f"data:image/jpeg;base64,{base64.b64encode(jpeg).decode()}"
    async with make_api() as api:
        job = await api.predict(BG, {"image": image}, headers=WAIT)
        assert job["status"] == "succeeded", job
        assert job["input"]["threshold"] == 0.5 and job["input"]["variant"] == "general"
        png = await fetch(api, job["output"]["image"])
        bad = await api.predict(
            BG, {"image": "data:image/png;base64," + base64.b64encode(b"junk").decode()}
        )
        failed = await api.wait_until(bad["id"], timeout=30)
        webp = encode(Image.open(DATA / "person.jpg"), "WEBP")
        uploaded = await api.client.post(
            "/v1/predictions/upload",
            data={"model": BG, "input": '{"soft_edges": false}'},
            files=[("file:image", ("me.webp", webp, "image/webp"))],
            headers=WAIT,
        )
        gif = await api.client.post(
            "/v1/predictions/upload",
            data={"model": BG, "input": "{}"},
            files=[
                ("file:image", ("me.gif", encode(Image.new("RGB", (8, 8)), "GIF"), "image/gif"))
            ],
        )
        assert uploaded.status_code == 201, uploaded.text
        assert uploaded.json()["status"] == "succeeded", uploaded.text
        hard = alpha_of(await fetch(api, uploaded.json()["output"]["image"]))
    assert set(np.unique(hard)) == {0.0, 1.0} and hard.shape == (320, 320)
    assert gif.status_code in (400, 415), gif.text  # refused at submit: not an accepted type
    assert "input.image" in gif.text
    alpha = alpha_of(png)
    assert alpha.shape == (320, 320)
    assert alpha[:80].max() == 0 and alpha[150:200, 130:190].mean() > 0.8
    assert failed["status"] == "failed" and failed["error"]["code"] == "invalid_input"
    assert "input.image" in failed["error"]["message"]


async def fetch(api: Api, url: str) -> bytes:
    r = await api.anon.get(path_of(url))
    assert r.status_code == 200, r.text
    return r.content


# -- DCGAN faces --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def faces() -> DcganFacesProvider:
    provider = DcganFacesProvider()
    provider.warm(entry(FACES))
    return provider


def generate(provider: DcganFacesProvider, **input: Any) -> list[bytes]:
    ctx = RunContext("t", 1)
    result = provider.run(entry(FACES), input, ctx)
    images = result.output["images"]
    assert set(result.output) == {"images"}
    assert result.usage == {"items": len(images)}
    assert all(f.content_type == "image/png" for f in images)
    return [f.data for f in images]


@needs_torch
def test_four_distinct_64px_faces(faces: DcganFacesProvider) -> None:
    images = generate(faces, count=4, seed=11)
    assert len(images) == 4 and len(set(images)) == 4
    for data in images:
        image = Image.open(io.BytesIO(data))
        assert (image.format, image.mode, image.size) == ("PNG", "RGB", (64, 64))
        pixels = np.asarray(image).astype(float)
        assert pixels.std() > 20  # a picture, not a flat colour
        # a face is in the middle: it differs from the corners' colour
        centre = pixels[24:40, 24:40].mean(axis=(0, 1))
        assert np.abs(centre - pixels[:6, :6].mean(axis=(0, 1))).max() > 5


@needs_torch
def test_the_same_seed_gives_the_same_bytes(faces: DcganFacesProvider) -> None:
    assert generate(faces, count=3, seed=5) == generate(faces, count=3, seed=5)
    assert generate(faces, count=3, seed=5) != generate(faces, count=3, seed=6)
    one, other = generate(faces), generate(faces)  # random seeds
    assert one != other


@needs_torch
def test_counts_outside_1_to_16_are_refused(faces: DcganFacesProvider) -> None:
    assert len(generate(faces, count=16, seed=1)) == 16
    for bad in (0, 17, True, 2.5):
        with pytest.raises(InvalidInput, match=r"input\.count"):
            generate(faces, count=bad)
    with pytest.raises(InvalidInput, match=r"input\.seed"):
        generate(faces, seed=-1)


@needs_torch
@api_test
async def test_faces_through_the_api_with_the_bulk_discount(make_api: ApiFactory) -> None:
    async with make_api() as api:
        job = await api.predict(FACES, {"count": 4, "seed": 9}, headers=WAIT)
        assert job["status"] == "succeeded", job
        pictures = [await fetch(api, url) for url in job["output"]["images"]]
        r = await api.client.post(
            "/v1/predictions", json={"model": FACES, "input": {"prompt": "a smiling face"}}
        )
    assert len(pictures) == 4 and len(set(pictures)) == 4
    assert all(Image.open(io.BytesIO(p)).size == (64, 64) for p in pictures)
    # 4 faces at 0.005 credits, 4 percent off
    assert job["usage"]["items"] == 4
    assert job["usage"]["credits_charged"] == pytest.approx(0.0192)
    assert r.status_code == 400 and "prompt" in r.text  # no text input


# -- unavailable entries ------------------------------------------------------------------


def test_unavailable_entries_state_their_own_reason_and_fix() -> None:
    registry = ProviderRegistry({"unavailable": UnavailableProvider})
    for model_id, words in ((VOICE_CLONE, "voice-cloning"), (TEXT_TO_IMAGE, "text-conditioned")):
        model = entry(model_id)
        found = registry.availability(model.provider, model)
        assert not found.available
        assert words in str(found.reason) and "remote provider" in str(found.fix)
    assert not registry.availability("unavailable").available  # no worker for them


@api_test
async def test_unavailable_entries_are_listed_and_refused(make_api: ApiFactory) -> None:
    async with make_api() as api:
        listed = (await api.client.get("/v1/models")).json()
        one = (await api.client.get(f"/v1/models/{VOICE_CLONE}")).json()
        clone = await api.client.post(
            "/v1/predictions",
            json={
                "model": VOICE_CLONE,
                "input": {"ref_audio": "data:audio/wav;base64,UklGRg==", "text": "안녕하세요"},
            },
        )
        t2i = await api.client.post(
            "/v1/predictions", json={"model": TEXT_TO_IMAGE, "input": {"prompt": "a cat"}}
        )
    models = {m["id"]: m for m in listed["data"]}
    for model_id, words in ((VOICE_CLONE, "voice-cloning"), (TEXT_TO_IMAGE, "text-conditioned")):
        shown = models[model_id]
        assert shown["available"] is False
        assert words in shown["reason"] and "remote provider" in shown["fix"]
    assert one["available"] is False and "voice-cloning" in one["reason"]
    schema = one["input_schema"]["properties"]
    assert {"ref_audio", "text", "language", "x_vector_only_mode", "ref_text"} == set(schema)
    for response, model_id, words in (
        (clone, VOICE_CLONE, "voice-cloning"),
        (t2i, TEXT_TO_IMAGE, "text-conditioned"),
    ):
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_request"
        assert model_id in error["message"] and words in error["message"]
        assert "remote provider" in error["details"]["fix"]
