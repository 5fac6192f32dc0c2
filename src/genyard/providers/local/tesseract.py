"""OCR with tesseract (Debian ``tesseract-ocr`` and its traineddata packages).

Each run decodes the image with Pillow (so every accepted format, EXIF orientation and
transparency are handled the same way, and a corrupt or oversized image is refused as
``invalid_input`` before tesseract sees it), hands tesseract an uncompressed copy on
stdin, and reads plain text and word boxes (TSV) from one run. tesseract runs as a
child process with one OpenMP thread (``OMP_THREAD_LIMIT=1``): two runs at once on two
cores beat one run using both. The loaded "engine" kept in the model cache is what was
discovered about the installation (binary, version, installed traineddata); the
traineddata itself is read by each child process.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import re
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genyard.domain.catalog import ModelEntry
from genyard.errors import InvalidInput, ProviderError
from genyard.providers.base import (
    Availability,
    ProviderResult,
    RunContext,
    SlotPlan,
    input_file,
)
from genyard.providers.local.cli_tools import run_tool, which
from genyard.providers.runtime import model_cache

CACHE_KEY = "tesseract"
#: The traineddata the bundled catalog entry offers, and the Debian package of each.
PACKAGES = {
    "eng": "tesseract-ocr-eng",
    "kor": "tesseract-ocr-kor",
    "Hangul": "tesseract-ocr-script-hang",
}
INSTALL = "sudo apt-get install tesseract-ocr " + " ".join(PACKAGES.values())
NOT_LANGUAGES = frozenset({"osd", "equ"})  # orientation and equation data, no text
MAX_PIXELS = 40_000_000
DEFAULT_LANGUAGES = "kor+Hangul"
DEFAULT_PSM = 6
MIN_DPI, MAX_DPI = 70, 1200  # a declared resolution outside this is ignored
LANGUAGE_NAME = re.compile(r"^[A-Za-z_]+$")


@dataclass(frozen=True, slots=True)
class Installation:
    """What ``tesseract --version`` and ``--list-langs`` said."""

    binary: str
    version: str
    languages: frozenset[str]


def discover(binary: str) -> Installation:
    version = run_tool([binary, "--version"], timeout=30)
    listed = run_tool([binary, "--list-langs"], timeout=30)
    if listed.returncode != 0:
        raise ProviderError(f"tesseract --list-langs failed: {listed.error_text}")
    # the first line is 'List of available languages in "<dir>" (n):'
    lines = listed.stdout.decode("utf-8", "replace").splitlines()[1:]
    languages = frozenset(line.strip() for line in lines if line.strip()) - NOT_LANGUAGES
    first = (version.stdout or version.stderr).decode("utf-8", "replace").splitlines()
    return Installation(binary, first[0].strip() if first else "tesseract", languages)


class TesseractProvider:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._installation: Installation | None = None

    # -- availability and loading ----------------------------------------------------

    def _installed(self) -> Installation | None:
        with self._lock:
            if self._installation is None:
                binary = which("tesseract")
                if binary is None:
                    return None
                self._installation = discover(binary)
            return self._installation

    def availability(self) -> Availability:
        if importlib.util.find_spec("PIL") is None:
            return Availability(
                False, "the Pillow package is not installed", "pip install 'pillow>=10,<13'"
            )
        try:
            found = self._installed()
        except ProviderError as exc:
            return Availability(False, str(exc), INSTALL)
        if found is None:
            return Availability(False, "the tesseract binary is not installed", INSTALL)
        missing = [lang for lang in PACKAGES if lang not in found.languages]
        if missing:
            return Availability(
                False,
                f"tesseract's traineddata for {', '.join(missing)} is not installed",
                "sudo apt-get install " + " ".join(PACKAGES[lang] for lang in missing),
            )
        return Availability(True)

    def slot_plan(self, cores: int) -> SlotPlan:
        return SlotPlan(threads_per_call=1, parallel_calls=max(1, cores))

    def _load(self) -> Installation:
        found = self._installed()
        if found is None:
            raise ProviderError("the tesseract binary is not installed")
        return found

    def warm(self, model: ModelEntry) -> None:
        model_cache().warm(CACHE_KEY, self._load, memory_mb=model.limits.memory_mb)

    # -- a run -------------------------------------------------------------------------

    def run(self, model: ModelEntry, input: dict[str, Any], ctx: RunContext) -> ProviderResult:
        image = input_file(input, "image", "an image file")
        wanted = parse_languages(input.get("languages", DEFAULT_LANGUAGES))
        psm = int(input.get("psm", DEFAULT_PSM))
        with model_cache().use(CACHE_KEY, self._load, memory_mb=model.limits.memory_mb) as found:
            absent = [lang for lang in wanted if lang not in found.languages]
            if absent:
                fixes = [PACKAGES.get(lang, f"tesseract-ocr-{lang.lower()}") for lang in absent]
                raise InvalidInput(
                    f"input.languages: {', '.join(absent)} is not installed here "
                    f"(installed: {', '.join(sorted(found.languages))}); "
                    f"an operator can add it with: sudo apt-get install {' '.join(fixes)}"
                )
            page = normalise_image(image.data)
            ctx.log(f"{page.width}x{page.height} px, languages {'+'.join(wanted)}, psm {psm}")
            ctx.progress(10)
            text, words = recognise(found.binary, page, wanted, psm, ctx, model.limits.timeout)
        ctx.progress(100)
        return ProviderResult(output={"text": text, "words": words}, usage={"items": 1})


def parse_languages(value: Any) -> list[str]:
    """``"kor+eng"`` or ``["kor", "eng"]`` as a list without repeats, order kept (the
    first language is tesseract's primary one)."""
    parts = value.split("+") if isinstance(value, str) else list(value)
    languages: list[str] = []
    for part in parts:
        name = str(part).strip()
        if not LANGUAGE_NAME.match(name):
            raise InvalidInput(f"input.languages: {name!r} is not a traineddata name")
        if name not in languages:
            languages.append(name)
    if not languages:
        raise InvalidInput("input.languages: name at least one language")
    return languages


@dataclass(frozen=True, slots=True)
class Page:
    pixels: bytes  # PNM
    width: int
    height: int
    dpi: int | None  # what the file declared, when plausible (the PNM copy loses it)


def normalise_image(data: bytes) -> Page:
    """The image upright (EXIF), flattened onto white, as PNM bytes, with its size and
    declared resolution.

    Raises :class:`InvalidInput` for data Pillow cannot decode (corrupt, truncated, not
    an image) and for images over ``MAX_PIXELS``."""
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as opened:
                width, height = opened.size
                if width * height > MAX_PIXELS:
                    raise InvalidInput(
                        f"the image is {width}x{height} pixels; at most {MAX_PIXELS:,} pixels"
                    )
                opened.seek(0)  # the first page or frame
                opened.load()
                declared = opened.info.get("dpi")
                upright = ImageOps.exif_transpose(opened)
    except InvalidInput:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Warning) as exc:
        raise InvalidInput(f"input.image is not a readable image: {exc}") from exc
    if upright.mode in ("RGBA", "LA", "PA") or (
        upright.mode == "P" and "transparency" in upright.info
    ):
        rgba = upright.convert("RGBA")
        flat = Image.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
    elif upright.mode in ("L", "RGB"):
        flat = upright
    else:  # 1, P, CMYK, I;16, F, YCbCr...
        flat = upright.convert("RGB")
    out = io.BytesIO()
    flat.save(out, format="PPM")
    dpi = None
    try:
        if declared and MIN_DPI <= round(float(declared[0])) <= MAX_DPI:
            dpi = round(float(declared[0]))
    except (TypeError, ValueError, IndexError):
        dpi = None
    return Page(out.getvalue(), flat.width, flat.height, dpi)


def recognise(
    binary: str,
    page: Page,
    languages: list[str],
    psm: int,
    ctx: RunContext,
    timeout: float,
) -> tuple[str, list[dict[str, Any]]]:
    """Plain text and word boxes from one tesseract run."""
    with tempfile.TemporaryDirectory(prefix="genyard-ocr-") as tmp:
        base = Path(tmp) / "out"
        args = [binary, "stdin", str(base), "-l", "+".join(languages), "--psm", str(psm)]
        if page.dpi is not None:
            args += ["--dpi", str(page.dpi)]
        done = run_tool(
            [*args, "txt", "tsv"],  # both outputs from one run
            ctx=ctx,
            stdin=page.pixels,
            env={"OMP_THREAD_LIMIT": "1"},
            timeout=timeout,
        )
        if done.returncode != 0:
            raise ProviderError(f"tesseract failed: {done.error_text}")
        try:
            text = base.with_suffix(".txt").read_text("utf-8")
            tsv = base.with_suffix(".tsv").read_text("utf-8")
        except OSError as exc:
            raise ProviderError(f"tesseract wrote no output: {done.error_text}") from exc
    text = tidy_text(text)
    return text, join_words(parse_words(tsv), text)


def tidy_text(text: str) -> str:
    """tesseract's text without trailing spaces, runs of blank lines or the page break."""
    lines = [line.rstrip() for line in text.replace("\f", "").splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n")


def parse_words(tsv: str) -> list[list[dict[str, Any]]]:
    """Level-5 (word) rows of tesseract's TSV, blanks dropped, confidence as 0-1,
    grouped by text line."""
    lines: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    reader = csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE)
    for row in reader:
        if row.get("level") != "5":
            continue
        text = (row.get("text") or "").strip()
        if not text:
            continue
        line = tuple(row.get(k) or "" for k in ("page_num", "block_num", "par_num", "line_num"))
        lines.setdefault(line, []).append(
            {
                "text": text,
                "left": int(row["left"]),
                "top": int(row["top"]),
                "width": int(row["width"]),
                "height": int(row["height"]),
                "confidence": round(max(0.0, float(row["conf"])) / 100, 4),
            }
        )
    return list(lines.values())


def join_words(lines: list[list[dict[str, Any]]], text: str) -> list[dict[str, Any]]:
    """The words of each line as the text spells them.

    tesseract's TSV splits Hangul into one entry per syllable where its text output
    writes them together ("서", "울", "의" for "서울의"): entries that the text shows
    without a space between them become one word, its box the union of theirs and its
    confidence the lowest of theirs. A line whose entries cannot be found in order in
    the text (it should not happen) is kept as the TSV has it.
    """
    text_lines = [line for line in text.splitlines() if line.strip()]
    if len(text_lines) != len(lines):
        return [word for line in lines for word in line]
    words: list[dict[str, Any]] = []
    for spelled, entries in zip(text_lines, lines, strict=True):
        words += _join_line(spelled, entries)
    return words


def _join_line(spelled: str, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    joined: list[dict[str, Any]] = []
    position = 0
    for entry in entries:
        start = spelled.find(entry["text"], position)
        if start < 0 or spelled[position:start].strip():
            return entries
        if joined and start == position:  # no space since the previous entry
            joined[-1] = _union(joined[-1], entry)
        else:
            joined.append(dict(entry))
        position = start + len(entry["text"])
    return joined


def _union(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    left, top = min(a["left"], b["left"]), min(a["top"], b["top"])
    right = max(a["left"] + a["width"], b["left"] + b["width"])
    bottom = max(a["top"] + a["height"], b["top"] + b["height"])
    return {
        "text": a["text"] + b["text"],
        "left": left,
        "top": top,
        "width": right - left,
        "height": bottom - top,
        "confidence": min(a["confidence"], b["confidence"]),
    }
