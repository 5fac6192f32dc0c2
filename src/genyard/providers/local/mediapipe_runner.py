"""MediaPipe selfie segmentation, run as a script by a Python of its own.

mediapipe 0.10.21 needs numpy<2, which genyard's own environment must not be pinned
to, so this file runs in a separate virtual environment (``.venv-mediapipe``, made by
``scripts/install-mediapipe.sh``) and imports nothing from genyard: only the standard
library, numpy, Pillow and mediapipe. genyard starts it as a subprocess
(:mod:`genyard.providers.local.mediapipe_client`) and keeps it running.

Protocol, over stdin and stdout: each message is one line of JSON, followed by
``size`` bytes when the message says ``size``.

- runner, once the engine is loaded: ``{"ready": true, "pid": N, "mediapipe": "0.10.21"}``
- ``{"op": "segment", "size": N, "threshold": 0.5, "soft_edges": true,
  "model_selection": 0, "max_pixels": M}`` + N bytes of PNG, JPEG or WebP
  -> ``{"ok": true, "size": N, "width": W, "height": H, "person": F}`` + N bytes of
  PNG (RGBA: the person kept, the rest transparent; ``person`` is the opaque fraction),
  or ``{"ok": false, "error": "invalid_input" | "engine", "message": "..."}``
- ``{"op": "ping"}`` -> ``{"ok": true, "pid": N}``
- ``{"op": "crash"}``: the runner exits at once with status 70 (tests of the restart)
- end of stdin: the runner exits with status 0.

Only protocol messages go to stdout: file descriptor 1 is pointed at stderr before
the engine loads, so nothing the engine prints can corrupt the stream.

``python mediapipe_runner.py --check`` loads the engine, segments a small image and
prints the versions (exit status 0), or prints why it cannot (exit status 1).

The selfie solution module is imported without running ``mediapipe/__init__.py``,
which would import every solution's drawing helpers and with them OpenCV and
matplotlib: selfie segmentation needs neither, so the environment needs only
mediapipe (installed with --no-deps), numpy<2, protobuf 4 and Pillow.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import sys
import types
from typing import Any, BinaryIO

MEDIAPIPE_VERSION = "0.10.21"
FORMATS = ("PNG", "JPEG", "WEBP")
MAX_HEADER = 65536
CRASH_STATUS = 70
#: The longest side the engine is given (its model sees 256 px): see Segmenter._mask.
MASK_SIDE = 512


def _bare_package(name: str) -> None:
    """Register package ``name`` without executing its ``__init__``."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError(f"no package named {name!r}")
    module = types.ModuleType(name)
    module.__path__ = list(spec.submodule_search_locations)
    module.__spec__ = spec
    sys.modules[name] = module


def _load_solution() -> Any:
    _bare_package("mediapipe")
    import mediapipe.python  # noqa: F401 - its __init__: the framework bindings only

    _bare_package("mediapipe.python.solutions")
    from mediapipe.python.solutions import selfie_segmentation

    return selfie_segmentation


def _mediapipe_version() -> str:
    from importlib.metadata import version

    return version("mediapipe")


class Segmenter:
    def __init__(self) -> None:
        self._solution = _load_solution()
        self._models: dict[int, Any] = {}
        self.model(0)  # the general model: load it now, so ready means ready

    def model(self, selection: int) -> Any:
        if selection not in self._models:
            self._models[selection] = self._solution.SelfieSegmentation(model_selection=selection)
        return self._models[selection]

    def segment(self, data: bytes, request: dict[str, Any]) -> tuple[bytes, int, int, float]:
        import numpy as np
        from PIL import Image, ImageOps, UnidentifiedImageError

        max_pixels = int(request.get("max_pixels") or 0)
        try:
            image: Image.Image = Image.open(io.BytesIO(data), formats=FORMATS)
            width, height = image.size
            if max_pixels and width * height > max_pixels:
                raise _Invalid(
                    f"the image is {width}x{height} ({width * height} pixels); "
                    f"at most {max_pixels} pixels"
                )
            image.load()
            image = ImageOps.exif_transpose(image)
        except _Invalid:
            raise
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise _Invalid(f"not a readable PNG, JPEG or WebP image: {exc}") from exc
        except Image.DecompressionBombError as exc:
            raise _Invalid(str(exc)) from exc
        had_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        image = image.convert("RGBA")
        mask = self._mask(image, int(request.get("model_selection", 0)))
        rgba = np.array(image)  # a writable copy: the output is made in it
        del image
        # Full-size arrays are few and small (uint8 where it can be): a 12-megapixel
        # photo is 48 MB as RGBA.
        keep = mask >= float(request.get("threshold", 0.5))
        if request.get("soft_edges", True):
            np.clip(mask, 0.0, 1.0, out=mask)
            np.multiply(mask, 255, out=mask)
            np.rint(mask, out=mask)
            alpha = mask.astype(np.uint8)
            alpha[~keep] = 0
        else:
            alpha = keep.astype(np.uint8) * np.uint8(255)
        del mask, keep
        if had_alpha:  # what was already transparent stays so
            alpha = (alpha.astype(np.uint16) * rgba[..., 3] // 255).astype(np.uint8)
        rgba[..., 3] = alpha
        rgba[alpha == 0, :3] = 0  # a transparent pixel keeps no colour
        height, width = alpha.shape
        person = float(np.count_nonzero(alpha)) / alpha.size if alpha.size else 0.0
        del alpha
        buffer = io.BytesIO()
        Image.fromarray(rgba).save(buffer, "PNG", compress_level=3)
        return buffer.getvalue(), width, height, person

    def _mask(self, image: Any, selection: int) -> Any:
        """The person confidence (0-1) of each pixel of an RGBA picture: a writable
        float32 array of its size.

        The model sees 256x256 (or 144x256) whatever the picture's size, so a picture
        larger than MASK_SIDE is scaled down before the engine (which otherwise holds
        buffers of the full size: about 120 MB more for 1280x960) and the mask is scaled
        back up, bilinear, as the engine itself would."""
        import numpy as np
        from PIL import Image

        width, height = image.size
        scale = MASK_SIDE / max(width, height)
        if scale < 1:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        rgb = np.asarray(image.convert("RGB"))
        mask = self.model(selection).process(rgb).segmentation_mask
        if mask is None:
            raise RuntimeError("the engine returned no segmentation mask")
        if scale < 1:
            full = Image.fromarray(np.asarray(mask, np.float32)).resize(
                (width, height), Image.Resampling.BILINEAR
            )
            return np.array(full)
        return np.array(mask, np.float32)


class _Invalid(Exception):
    pass


def _write(out: BinaryIO, message: dict[str, Any], payload: bytes = b"") -> None:
    out.write(json.dumps(message).encode() + b"\n" + payload)
    out.flush()


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) != size:
        raise EOFError("stdin closed in the middle of a payload")
    return data


def serve(stdin: BinaryIO, out: BinaryIO) -> int:
    segmenter = Segmenter()
    _write(out, {"ready": True, "pid": os.getpid(), "mediapipe": _mediapipe_version()})
    while True:
        line = stdin.readline(MAX_HEADER)
        if not line:
            return 0
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("a request is a JSON object")
            size = int(request.get("size", 0))
        except ValueError as exc:
            _write(out, {"ok": False, "error": "engine", "message": f"bad request: {exc}"})
            return 2  # the stream is out of step: stop, genyard starts a new runner
        payload = _read_exact(stdin, size) if size else b""
        op = request.get("op")
        if op == "ping":
            _write(out, {"ok": True, "pid": os.getpid()})
        elif op == "crash":
            os._exit(CRASH_STATUS)
        elif op == "segment":
            try:
                png, width, height, person = segmenter.segment(payload, request)
            except _Invalid as exc:
                _write(out, {"ok": False, "error": "invalid_input", "message": str(exc)})
            except Exception as exc:
                message = f"{type(exc).__name__}: {exc}"
                _write(out, {"ok": False, "error": "engine", "message": message})
            else:
                reply = {"ok": True, "size": len(png), "width": width, "height": height}
                _write(out, {**reply, "person": round(person, 4)}, png)
        else:
            _write(out, {"ok": False, "error": "engine", "message": f"unknown op {op!r}"})


def check() -> int:
    """Load the engine and segment a small image: the install script's last step."""
    try:
        import numpy as np
        import PIL
        from PIL import Image

        version = _mediapipe_version()
        segmenter = Segmenter()
        buffer = io.BytesIO()
        Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(buffer, "PNG")
        png, width, height, _ = segmenter.segment(buffer.getvalue(), {})
        Image.open(io.BytesIO(png)).load()
        if (width, height) != (64, 64):
            raise RuntimeError(f"a 64x64 image came back {width}x{height}")
    except Exception as exc:
        print(f"mediapipe runner check failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    ok = version == MEDIAPIPE_VERSION
    print(
        json.dumps(
            {
                "ok": ok,
                "mediapipe": version,
                "numpy": np.__version__,
                "pillow": PIL.__version__,
                "python": sys.version.split()[0],
            }
        )
    )
    if not ok:
        print(f"mediapipe {MEDIAPIPE_VERSION} expected, found {version}", file=sys.stderr)
    return 0 if ok else 1


def main(argv: list[str]) -> int:
    if argv[1:] == ["--check"]:
        return check()
    if argv[1:]:
        print("usage: mediapipe_runner.py [--check]", file=sys.stderr)
        return 2
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever the engine prints goes to stderr, never into the protocol
    sys.stdout = sys.stderr
    return serve(sys.stdin.buffer, out)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
