"""OCR (tesseract) and music (the algorithmic composer) on real engines.

The providers are called directly with the bundled catalog entries (real tesseract,
real fluidsynth and ffmpeg), and once each through the API (a real app with workers,
on SQLite only: these tests are about the engines, not the database).
"""

from __future__ import annotations

import base64
import io
import re
import subprocess
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mido
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from api.conftest import _no_genyard_env, catalog_dir, make_api  # noqa: F401 (fixtures)
from api.support import ApiFactory
from genyard.domain.catalog import BUNDLED_CATALOG_DIR, Catalog, ModelEntry
from genyard.errors import InvalidInput, ProviderError
from genyard.providers.base import InputFile, OutputFile, ProviderResult, RunContext
from genyard.providers.local import music as music_module
from genyard.providers.local import tesseract as tesseract_module
from genyard.providers.local.cli_tools import run_tool
from genyard.providers.local.composer import DRUM_CHANNEL, Composer
from genyard.providers.local.music import ComposerProvider
from genyard.providers.local.music_words import (
    INSTRUMENT_WORDS,
    STYLES,
    TEMPO_WORDS,
    parse_prompt,
)
from genyard.providers.local.tesseract import TesseractProvider
from word_errors import word_error_rate

OCR_MODEL = "tesseract-ocr/tesseract"
MUSIC_MODEL = "genyard/midi-composer"
FONT_DIR = Path("/usr/share/fonts/truetype/nanum")
KOREAN = "오늘 서울의 날씨는 맑습니다"
ENGLISH = "The quick brown fox jumps over the lazy dog"
WAIT = {"Prefer": "wait=60"}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load([BUNDLED_CATALOG_DIR])


def entry(catalog: Catalog, model_id: str) -> ModelEntry:
    model = catalog.get(model_id)
    assert model is not None
    return model


def with_defaults(model: ModelEntry, input: dict[str, Any]) -> dict[str, Any]:
    """The input as submit stores it: the schema's defaults filled in."""
    props = model.input_schema["properties"]
    return {k: v["default"] for k, v in props.items() if "default" in v} | input


def ctx() -> RunContext:
    return RunContext("test", 1)


# -- OCR ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ocr() -> TesseractProvider:
    provider = TesseractProvider()
    availability = provider.availability()
    if not availability.available:
        pytest.skip(f"tesseract: {availability.reason} ({availability.fix})")
    return provider


def nanum_font() -> Path:
    font = FONT_DIR / "NanumGothic.ttf"
    if not font.exists():
        pytest.skip("fonts-nanum is not installed (sudo apt-get install fonts-nanum)")
    return font


@pytest.fixture(scope="module")
def page() -> tuple[bytes, tuple[int, int, int, int]]:
    """A PNG with a Korean line and an English line, and where the word "fox" is."""
    font = ImageFont.truetype(str(nanum_font()), 40)
    image = Image.new("RGB", (1000, 240), "white")
    draw = ImageDraw.Draw(image)
    draw.text((40, 40), KOREAN, font=font, fill="black")
    draw.text((40, 140), ENGLISH, font=font, fill="black")
    before = draw.textlength("The quick brown ", font=font)
    left, top, right, bottom = draw.textbbox((40 + before, 140), "fox", font=font)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue(), (round(left), round(top), round(right), round(bottom))


def image_file(data: bytes, content_type: str = "image/png") -> InputFile:
    return InputFile(data, content_type, "page", "data:")


def read(
    provider: TesseractProvider, catalog: Catalog, data: bytes, **input: Any
) -> ProviderResult:
    model = entry(catalog, OCR_MODEL)
    return provider.run(model, with_defaults(model, {"image": image_file(data), **input}), ctx())


def test_ocr_reads_a_korean_and_an_english_line_with_word_boxes(
    ocr: TesseractProvider, catalog: Catalog, page: tuple[bytes, tuple[int, int, int, int]]
) -> None:
    data, (left, top, right, bottom) = page
    result = read(ocr, catalog, data)
    lines = [line for line in result.output["text"].splitlines() if line.strip()]
    assert lines == [KOREAN, ENGLISH], result.output["text"]
    words = result.output["words"]
    assert [w["text"] for w in words] == KOREAN.split() + ENGLISH.split()
    for word in words:
        assert set(word) == {"text", "left", "top", "width", "height", "confidence"}
        assert word["left"] >= 0 and word["left"] + word["width"] <= 1000, word
        assert word["top"] >= 0 and word["top"] + word["height"] <= 240, word
        assert word["width"] > 0 and word["height"] > 0
        assert 0.5 < word["confidence"] <= 1, word
    fox = next(w for w in words if w["text"] == "fox")
    # the box tesseract found covers where Pillow drew the word (within a few pixels)
    assert abs(fox["left"] - left) <= 4 and abs(fox["left"] + fox["width"] - right) <= 4, fox
    assert fox["top"] <= bottom and fox["top"] + fox["height"] >= top, fox
    korean_words = [w for w in words if re.search("[가-힣]", w["text"])]
    assert all(w["top"] < 120 for w in korean_words)  # the first line, above the English
    assert result.usage == {"items": 1}


def test_ocr_reads_a_full_page_with_the_default_settings(
    ocr: TesseractProvider, catalog: Catalog
) -> None:
    """A single-column A4 page (150 dpi, 22 px text) of mixed Korean and English: the
    default psm 6 reads it with few word errors, where tesseract's automatic layout
    (psm 3) got about 30 % of the words wrong."""
    text = (
        "Genyard is a self-hostable AI generation platform. It runs text, embeddings, "
        "rerank, speech, music, images, OCR and video models behind one engine that owns "
        "accounts, API keys, credits, rate limits, an async job queue, webhooks, file "
        "storage and searchable databases. 서울의 지하철은 새벽 다섯 시 반부터 운행을 "
        "시작합니다. 고양이는 햇볕이 잘 드는 창가에서 오후 내내 낮잠을 자는 것을 "
        "좋아합니다. 오늘 코스피 지수는 외국인 매도세로 이 퍼센트 넘게 하락했습니다. "
    ) * 3
    font = ImageFont.truetype(str(FONT_DIR / "NanumSquareR.ttf"), 22)
    image = Image.new("L", (1240, 1754), 255)
    draw = ImageDraw.Draw(image)
    lines, line = [], ""
    for word in text.split():
        if draw.textlength(f"{line} {word}", font=font) > 1040:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    for i, line in enumerate(lines):
        draw.text((100, 100 + i * 35), line, font=font, fill=0)
    out = io.BytesIO()
    image.save(out, format="PNG")
    got = read(ocr, catalog, out.getvalue()).output["text"].split()
    assert word_error_rate(text.split(), got) <= 0.08, got


def test_ocr_language_choice_changes_what_is_read(
    ocr: TesseractProvider, catalog: Catalog, page: tuple[bytes, tuple[int, int, int, int]]
) -> None:
    data, _ = page
    english_only = read(ocr, catalog, data, languages=["eng"]).output["text"]
    assert ENGLISH in english_only
    assert not re.search("[가-힣]", english_only)  # the English model has no Hangul


def test_ocr_reads_jpeg_with_transparency_and_exif_rotation(
    ocr: TesseractProvider, catalog: Catalog
) -> None:
    font = ImageFont.truetype(str(nanum_font()), 40)
    image = Image.new("RGBA", (700, 120), (0, 0, 0, 0))  # transparent: read as white
    ImageDraw.Draw(image).text((30, 30), "Transparent background", font=font, fill="black")
    png = io.BytesIO()
    image.save(png, format="PNG")
    assert "Transparent background" in read(ocr, catalog, png.getvalue()).output["text"]
    # a JPEG stored sideways with EXIF orientation 6 (rotate 90 degrees clockwise to view)
    upright = Image.new("RGB", (700, 120), "white")
    ImageDraw.Draw(upright).text((30, 30), "Rotated photo text", font=font, fill="black")
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    jpeg = io.BytesIO()
    stored.save(jpeg, format="JPEG", quality=95, exif=exif)
    result = read(ocr, catalog, jpeg.getvalue(), psm=6)
    assert "Rotated photo text" in result.output["text"]
    assert all(w["left"] + w["width"] <= 700 for w in result.output["words"])


@pytest.mark.parametrize(
    "data",
    [b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, b"not an image at all", b""],
    ids=["truncated-png", "text", "empty"],
)
def test_ocr_refuses_a_corrupt_image_as_invalid_input(
    ocr: TesseractProvider, catalog: Catalog, data: bytes
) -> None:
    with pytest.raises(InvalidInput, match="not a readable image"):
        read(ocr, catalog, data)


def test_ocr_refuses_a_language_that_is_not_installed(
    ocr: TesseractProvider, catalog: Catalog, page: tuple[bytes, tuple[int, int, int, int]]
) -> None:
    with pytest.raises(InvalidInput, match="tesseract-ocr-jpn"):
        read(ocr, catalog, page[0], languages="jpn")


# -- music -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def composer() -> ComposerProvider:
    provider = ComposerProvider()
    availability = provider.availability()
    if not availability.available:
        pytest.skip(f"composer: {availability.reason} ({availability.fix})")
    return provider


def compose(provider: ComposerProvider, catalog: Catalog, **input: Any) -> ProviderResult:
    model = entry(catalog, MUSIC_MODEL)
    return provider.run(model, with_defaults(model, input), ctx())


def wav_samples(data: bytes) -> tuple[np.ndarray[Any, Any], int]:
    with wave.open(io.BytesIO(data), "rb") as w:
        frames = w.readframes(w.getnframes())
        rate, channels = w.getframerate(), w.getnchannels()
    samples = np.frombuffer(frames, dtype="<i2").reshape(-1, channels) / 32768
    return samples, rate


def midi_of(result: ProviderResult) -> mido.MidiFile:
    midi = result.output["midi"]
    assert isinstance(midi, OutputFile) and midi.content_type == "audio/midi"
    return mido.MidiFile(file=io.BytesIO(midi.data))


@pytest.mark.parametrize("seconds", [6, 23.5])
def test_music_is_audible_and_as_long_as_asked(
    composer: ComposerProvider, catalog: Catalog, seconds: float
) -> None:
    result = compose(
        composer, catalog, prompt="happy pop with piano and drums", audio_duration=seconds, seed=1
    )
    audio = result.output["audio"]
    assert isinstance(audio, OutputFile) and audio.content_type == "audio/wav"
    samples, rate = wav_samples(audio.data)
    measured = len(samples) / rate
    assert abs(measured - seconds) <= 0.05 * seconds, measured
    assert result.output["duration"] == pytest.approx(measured, abs=1e-3)
    assert result.usage["seconds"] == pytest.approx(measured, abs=1e-3)
    assert result.usage["output_seconds"] == result.usage["seconds"]
    rms = float(np.sqrt(np.mean(samples**2)))
    assert rms > 0.03, rms
    # sound all the way through, not one note then silence: every second but the
    # faded last one carries signal
    per_second = [
        np.sqrt(np.mean(samples[i * rate : (i + 1) * rate] ** 2)) for i in range(int(measured) - 1)
    ]
    assert min(per_second) > 0.01, per_second


def test_music_uses_the_prompts_tempo_and_puts_drums_on_channel_10(
    composer: ComposerProvider, catalog: Catalog
) -> None:
    result = compose(
        composer,
        catalog,
        prompt="Upbeat jazz with piano, saxophone and drums, 120bpm",
        audio_duration=8,
        seed=5,
        return_midi=True,
    )
    midi = midi_of(result)
    tempos = [m.tempo for t in midi.tracks for m in t if m.type == "set_tempo"]
    assert tempos == [mido.bpm2tempo(120)] == [500000]
    notes = [m for t in midi.tracks for m in t if m.type == "note_on"]
    drum_notes = {m.note for m in notes if m.channel == DRUM_CHANNEL}
    assert drum_notes & {36, 38, 42, 44, 51}, drum_notes  # kick, snare, hats or ride
    programs = {m.channel: m.program for t in midi.tracks for m in t if m.type == "program_change"}
    assert 65 in programs.values() and 0 in programs.values()  # alto sax and piano
    assert all(programs[m.channel] in (0, 65) for m in notes if m.channel != DRUM_CHANNEL)
    composition = result.output["composition"]
    assert composition["bpm"] == 120 and composition["drums"] is True
    assert composition["style"] == "jazz"
    assert {"jazz", "piano", "saxophone", "drums", "120bpm"} <= set(composition["understood"])
    # 120 bpm for 8 s is 16 beats: the notes stop by then
    end = max(
        mido.tick2second(sum(m.time for m in t), midi.ticks_per_beat, 500000) for t in midi.tracks
    )
    assert 7.5 <= end <= 8.0, end


def test_music_without_drums_asked_has_none(composer: ComposerProvider, catalog: Catalog) -> None:
    result = compose(
        composer,
        catalog,
        prompt="sad piano and cello at 72 bpm",
        audio_duration=6,
        seed=3,
        return_midi=True,
    )
    midi = midi_of(result)
    assert not [m for t in midi.tracks for m in t if getattr(m, "channel", None) == DRUM_CHANNEL]
    assert result.output["composition"]["key"] == "A minor"
    assert [m.tempo for t in midi.tracks for m in t if m.type == "set_tempo"] == [
        mido.bpm2tempo(72)
    ]


def test_the_same_seed_gives_the_same_midi_and_another_seed_another(
    composer: ComposerProvider, catalog: Catalog
) -> None:
    def midi_bytes(seed: int) -> bytes:
        out = compose(
            composer,
            catalog,
            prompt="calm guitar and flute",
            audio_duration=5,
            seed=seed,
            return_midi=True,
        ).output
        assert out["seed"] == seed
        data: bytes = out["midi"].data
        return data

    first = midi_bytes(42)
    assert midi_bytes(42) == first
    assert midi_bytes(43) != first


def test_mp3_output_decodes_to_the_asked_duration(
    composer: ComposerProvider, catalog: Catalog
) -> None:
    result = compose(
        composer, catalog, prompt="epic orchestral", audio_duration=7, output_format="mp3", seed=9
    )
    audio = result.output["audio"]
    assert audio.content_type == "audio/mpeg" and audio.filename.endswith(".mp3")
    decoded = subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-i",
            "pipe:0",
            "-f",
            "s16le",
            "-ac",
            "1",
            "-ar",
            "16000",
            "pipe:1",
        ],
        input=audio.data,
        capture_output=True,
        check=True,
    ).stdout
    samples = np.frombuffer(decoded, dtype="<i2") / 32768
    assert abs(len(samples) / 16000 - 7) <= 0.35
    assert float(np.sqrt(np.mean(samples**2))) > 0.03


def test_prompt_words_are_understood() -> None:
    seed_example = parse_prompt("Upbeat jazz with piano and saxophone, 120bpm")
    assert seed_example.style.name == "jazz" and seed_example.bpm == 120
    assert [i.name for i in seed_example.instruments] == ["piano", "saxophone"]
    assert not seed_example.drums
    korean = parse_prompt("슬픈 피아노와 첼로 음악, 템포 66")
    assert korean.style.name == "sad" and korean.bpm == 66 and korean.minor
    assert [i.name for i in korean.instruments] == ["piano", "cello"]
    waltz = parse_prompt("a waltz in E flat major with strings, slow")
    assert waltz.beats_per_bar == 3 and waltz.key_name == "Eb major"
    assert waltz.bpm == round(STYLES["waltz"].bpm * TEMPO_WORDS["slow"])
    sad_jazz = parse_prompt("sad jazz")
    assert sad_jazz.style.name == "jazz" and sad_jazz.minor and sad_jazz.mood is not None
    assert parse_prompt("electric guitar").instruments[0].name == "electric guitar"
    assert parse_prompt("happy song with drums").instruments  # the style's band plays too
    assert parse_prompt("anything at 999 bpm").bpm == 220  # clamped to the range
    nothing = parse_prompt("zzz")
    assert nothing.understood == () and nothing.style.name == "happy"


def test_ocr_and_music_are_the_default_models_of_their_types(catalog: Catalog) -> None:
    assert catalog.defaults()["ocr"] == {"default": OCR_MODEL, "ko": OCR_MODEL, "en": OCR_MODEL}
    assert catalog.defaults()["music"] == {"default": MUSIC_MODEL}


def test_the_catalog_lists_exactly_the_words_the_composer_understands(catalog: Catalog) -> None:
    capabilities = entry(catalog, MUSIC_MODEL).capabilities
    assert capabilities["instruments"] == sorted(INSTRUMENT_WORDS)
    assert capabilities["moods"] + capabilities["genres"] == list(STYLES)
    assert [STYLES[g].genre for g in capabilities["genres"]] == [True] * len(capabilities["genres"])
    assert capabilities["tempo_words"] == sorted(TEMPO_WORDS)


def test_a_short_clip_at_a_slow_tempo_still_fits(composer: ComposerProvider) -> None:
    piece = Composer(parse_prompt("calm at 40 bpm"), 1.0, 0)
    assert piece.bars == 0 and piece.final_beat == 0  # just the closing chord
    midi = piece.midi()
    assert midi.length <= 1.0 + 1e-6


# -- availability ------------------------------------------------------------------------


def test_missing_binaries_or_traineddata_say_how_to_install_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tesseract_module, "which", lambda name: None)
    missing = TesseractProvider().availability()
    assert not missing.available and missing.reason == "the tesseract binary is not installed"
    assert missing.fix == (
        "sudo apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-kor "
        "tesseract-ocr-script-hang"
    )
    monkeypatch.setattr(tesseract_module, "which", lambda name: "/usr/bin/tesseract")
    monkeypatch.setattr(
        tesseract_module,
        "discover",
        lambda binary: tesseract_module.Installation(binary, "tesseract", frozenset({"eng"})),
    )
    partial = TesseractProvider().availability()
    assert partial.reason == "tesseract's traineddata for kor, Hangul is not installed"
    assert partial.fix == "sudo apt-get install tesseract-ocr-kor tesseract-ocr-script-hang"

    monkeypatch.setattr(music_module, "which", lambda name: None if name == "fluidsynth" else name)
    no_synth = ComposerProvider().availability()
    assert (no_synth.available, no_synth.reason) == (False, "fluidsynth not installed")
    assert no_synth.fix == "sudo apt-get install fluidsynth fluid-soundfont-gm ffmpeg"


# -- the child processes -------------------------------------------------------------------


def test_a_canceled_run_kills_its_child_process_at_once() -> None:
    run_ctx = ctx()
    threading.Timer(0.3, run_ctx.cancel_event.set).start()
    started = time.monotonic()
    with pytest.raises(ProviderError, match="sleep canceled"):
        run_tool(["sleep", "30"], ctx=run_ctx)
    assert time.monotonic() - started < 2
    with pytest.raises(ProviderError, match=r"took longer than 0\.3 s"):
        run_tool(["sleep", "30"], timeout=0.3)
    done = run_tool(["cat"], stdin=b"x" * 1_000_000)  # large input, no pipe deadlock
    assert (done.returncode, len(done.stdout)) == (0, 1_000_000)


# -- through the API ---------------------------------------------------------------------


@pytest.fixture
def _engines(ocr: TesseractProvider, composer: ComposerProvider) -> Iterator[None]:
    yield


@pytest.mark.sqlite_only(reason="about the engines, not the database")
async def test_ocr_and_music_through_the_api(
    make_api: ApiFactory,  # noqa: F811
    page: tuple[bytes, tuple[int, int, int, int]],
    _engines: None,
) -> None:
    data_uri = "data:image/png;base64," + base64.b64encode(page[0]).decode()
    async with make_api() as api:
        job = await api.predict(OCR_MODEL, {"image": data_uri}, headers=WAIT)
        assert job["status"] == "succeeded", job
        assert KOREAN in job["output"]["text"] and ENGLISH in job["output"]["text"]
        assert job["output"]["words"][0]["text"] == "오늘"

        broken = "data:image/png;base64," + base64.b64encode(b"\x89PNG broken").decode()
        job = await api.predict(OCR_MODEL, {"image": broken}, headers=WAIT)
        assert job["status"] == "failed" and job["error"]["code"] == "invalid_input", job

        job = await api.predict(
            MUSIC_MODEL,
            {"prompt": "happy piano and drums, 100bpm", "audio_duration": 4, "seed": 2},
            headers=WAIT,
        )
        assert job["status"] == "succeeded", job
        output = job["output"]
        assert output["duration"] == 4.0 and output["composition"]["bpm"] == 100
        assert job["usage"]["seconds"] == 4.0
        fetched = await api.client.get(output["audio"])
        assert fetched.status_code == 200, fetched.text
        samples, rate = wav_samples(fetched.content)
        assert rate == 44100 and len(samples) == 4 * 44100
        assert float(np.sqrt(np.mean(samples**2))) > 0.03
