"""genyard's side of the MediaPipe runner: a warm subprocess in a Python of its own.

mediapipe 0.10.21 needs numpy<2, so it lives in its own virtual environment and runs
:mod:`genyard.providers.local.mediapipe_runner` as a script (the protocol is described
there). :class:`RunnerProcess` is one such process, started on first use and started
again, transparently, when it has died while idle; a run during which it dies fails
with :class:`ProviderError` and the next run gets a fresh process. :class:`RunnerPool`
holds up to ``size`` of them, started as parallel calls need them.

Which Python: ``GENYARD_MEDIAPIPE_PYTHON`` when set, else ``.venv-mediapipe/bin/python``
in the working directory or, failing that, in the genyard checkout this module lives in.
``scripts/install-mediapipe.sh`` makes that environment.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from genyard.errors import ProviderError

log = logging.getLogger(__name__)

PYTHON_ENV = "GENYARD_MEDIAPIPE_PYTHON"
VENV_DIR = ".venv-mediapipe"
INSTALL_COMMAND = "sh scripts/install-mediapipe.sh"
RUNNER_SCRIPT = Path(__file__).resolve().with_name("mediapipe_runner.py")
START_TIMEOUT = 60.0
MAX_HEADER = 65536
_CHUNK = 1 << 20


def _checkout_root() -> Path | None:
    root = Path(__file__).resolve().parents[4]  # src/genyard/providers/local/<this>
    return root if (root / "pyproject.toml").is_file() else None


def runner_python() -> Path:
    """The Python that runs the runner (it may not exist: see :func:`runner_problem`)."""
    configured = os.environ.get(PYTHON_ENV)
    if configured:
        return Path(configured)
    candidates = [Path.cwd() / VENV_DIR / "bin" / "python"]
    root = _checkout_root()
    if root is not None:
        candidates.append(root / VENV_DIR / "bin" / "python")
    return next((c for c in candidates if c.exists()), candidates[0])


_checked: dict[Path, str | None] = {}
_check_lock = threading.Lock()


def runner_problem(python: Path) -> str | None:
    """Why ``python`` cannot run the runner, or None when it can. Checked once per
    Python and process (``mediapipe_runner.py --check``: about a second)."""
    with _check_lock:
        if python in _checked:
            return _checked[python]
        if not python.exists():
            problem: str | None = (
                f"no Python for mediapipe at {python} (mediapipe runs in a virtual "
                f"environment of its own because it needs numpy<2; {PYTHON_ENV} names "
                "another Python)"
            )
        else:
            problem = _run_check(python)
        _checked[python] = problem
        return problem


def _run_check(python: Path) -> str | None:
    try:
        done = subprocess.run(  # noqa: S603 - our own script, run by the configured Python
            [str(python), str(RUNNER_SCRIPT), "--check"],
            capture_output=True,
            text=True,
            timeout=120,
            env=runner_env(),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{python} cannot run the mediapipe runner: {exc}"
    if done.returncode == 0:
        return None
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    why = lines[-1] if lines else f"exit status {done.returncode}"
    return f"{python} cannot run the mediapipe runner: {why}"


def runner_env() -> dict[str, str]:
    """The runner's environment: genyard's own Python paths left out; the engine's
    info logs quieted (warnings and errors still reach genyard's log)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.setdefault("GLOG_minloglevel", "1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    return env


class RunnerDied(ProviderError):
    """The runner process ended (or was stopped) in the middle of a request."""


class RunnerProcess:
    """One runner subprocess; requests are serialised (one at a time)."""

    def __init__(self, python: Path, *, start_timeout: float = START_TIMEOUT) -> None:
        self.python = python
        self.start_timeout = start_timeout
        self.starts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._lock = threading.Lock()
        self._stderr: deque[str] = deque(maxlen=20)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def alive(self) -> bool:
        return self.pid is not None

    def start(self) -> None:
        with self._lock:
            self._ensure_started()

    def request(
        self,
        message: dict[str, Any],
        payload: bytes = b"",
        *,
        timeout: float,
        canceled: Callable[[], bool] = lambda: False,
    ) -> tuple[dict[str, Any], bytes]:
        """Send one request and read its reply (a header and its payload).

        A runner that died while idle is started again first. Past ``timeout`` or once
        ``canceled()`` is true, the runner is stopped (it is in the middle of the
        request) and :class:`ProviderError` is raised; the next request starts a new one.
        """
        with self._lock:
            self._ensure_started()
            proc = self._proc
            assert proc is not None and proc.stdin is not None
            header = {**message, "size": len(payload)} if payload else message
            deadline = time.monotonic() + timeout
            self._send(json.dumps(header).encode() + b"\n" + payload, deadline, canceled)
            reply = self._read_header(deadline, canceled)
            size = int(reply.get("size", 0)) if reply.get("ok") else 0
            data = self._read(size, deadline, canceled) if size else b""
            return reply, data

    def close(self, grace: float = 2.0) -> None:
        """Close stdin (the runner exits), then kill it if it is still there."""
        with self._lock:
            self._stop(grace)

    def kill(self) -> None:
        """Kill the process now, as a crash would (tests)."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()

    # -- internals (called with the lock held) ------------------------------------------

    def _ensure_started(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        if self._proc is not None:
            log.warning(
                "mediapipe runner %s had exited (status %s); starting a new one",
                self._proc.pid,
                self._proc.returncode,
            )
            self._stop(0)
        self._buffer = b""
        started = time.monotonic()
        try:
            self._proc = subprocess.Popen(  # noqa: S603 - our own script
                [str(self.python), str(RUNNER_SCRIPT)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                bufsize=0,
                env=runner_env(),
                close_fds=True,
                # not in the terminal's process group: a Ctrl-C stops genyard, which
                # then stops its runners (they also exit when their stdin closes)
                start_new_session=True,
            )
        except OSError as exc:
            raise ProviderError(
                f"cannot start the mediapipe runner with {self.python}: {exc}"
            ) from exc
        self.starts += 1
        assert self._proc.stdin is not None and self._proc.stderr is not None
        os.set_blocking(self._proc.stdin.fileno(), False)
        threading.Thread(
            target=self._drain_stderr,
            args=(self._proc.stderr,),
            name=f"mediapipe-runner-{self._proc.pid}-stderr",
            daemon=True,
        ).start()
        try:
            ready = self._read_header(started + self.start_timeout, lambda: False)
        except ProviderError as exc:
            raise ProviderError(f"the mediapipe runner did not start: {exc}") from exc
        if not ready.get("ready"):
            self._stop(0)
            raise ProviderError(f"the mediapipe runner did not start: it said {ready}")
        log.info(
            "mediapipe runner %s ready in %.2f s (mediapipe %s)",
            self._proc.pid,
            time.monotonic() - started,
            ready.get("mediapipe"),
        )

    def _send(self, data: bytes, deadline: float, canceled: Callable[[], bool]) -> None:
        """Write to the runner's stdin (non-blocking), watching the deadline and the
        cancel flag: a runner that stopped reading cannot hold a call forever."""
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        view = memoryview(data)
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdin, selectors.EVENT_WRITE)
            while view:
                self._check(deadline, canceled)
                if not selector.select(min(max(deadline - time.monotonic(), 0), 0.1)):
                    continue
                try:
                    view = view[os.write(proc.stdin.fileno(), view[:_CHUNK]) :]
                except BlockingIOError:
                    continue
                except OSError as exc:
                    raise self._died("while it was sent a request") from exc

    def _check(self, deadline: float, canceled: Callable[[], bool]) -> None:
        if canceled():
            self._stop(0)
            raise ProviderError("canceled")
        if time.monotonic() >= deadline:
            self._stop(0)
            raise ProviderError("the mediapipe runner did not answer in time")

    def _drain_stderr(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._stderr.append(line)
                log.debug("mediapipe runner: %s", line)

    def _read_header(self, deadline: float, canceled: Callable[[], bool]) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            if len(self._buffer) > MAX_HEADER:
                self._stop(0)
                raise ProviderError("the mediapipe runner sent a malformed reply")
            self._fill(deadline, canceled)
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            reply = json.loads(line)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            self._stop(0)
            raise ProviderError("the mediapipe runner sent a malformed reply")
        return reply

    def _read(self, size: int, deadline: float, canceled: Callable[[], bool]) -> bytes:
        while len(self._buffer) < size:
            self._fill(deadline, canceled)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _fill(self, deadline: float, canceled: Callable[[], bool]) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            while True:
                self._check(deadline, canceled)
                if selector.select(min(max(deadline - time.monotonic(), 0), 0.1)):
                    break
        chunk = os.read(proc.stdout.fileno(), _CHUNK)
        if not chunk:
            raise self._died("before it answered")
        self._buffer += chunk

    def _died(self, when: str) -> RunnerDied:
        proc = self._proc
        status = None
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                status = proc.wait(timeout=5)
        self._stop(0)
        time.sleep(0.05)  # let the stderr thread take the last lines
        last = self._stderr[-1] if self._stderr else "no output"
        return RunnerDied(f"the mediapipe runner exited (status {status}) {when}: {last}")

    def _stop(self, grace: float) -> None:
        proc, self._proc = self._proc, None
        self._buffer = b""
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        if grace > 0:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


class RunnerPool:
    """Up to ``size`` runner processes; a second one starts when two calls overlap."""

    def __init__(self, python: Path, size: int) -> None:
        self.python = python
        self.size = max(1, size)
        self._runners: list[RunnerProcess] = []
        self._idle: list[RunnerProcess] = []
        self._cond = threading.Condition()
        self._closed = False

    def warm(self) -> None:
        runner = self.acquire()
        try:
            runner.start()
        finally:
            self.release(runner)

    def acquire(self) -> RunnerProcess:
        with self._cond:
            while True:
                if self._closed:
                    raise ProviderError("the mediapipe runners were shut down")
                if self._idle:
                    return self._idle.pop()
                if len(self._runners) < self.size:
                    runner = RunnerProcess(self.python)
                    self._runners.append(runner)
                    return runner
                self._cond.wait()

    def release(self, runner: RunnerProcess) -> None:
        with self._cond:
            self._idle.append(runner)
            self._cond.notify()

    def pids(self) -> list[int]:
        with self._cond:
            return [pid for r in self._runners if (pid := r.pid) is not None]

    def runners(self) -> list[RunnerProcess]:
        with self._cond:
            return list(self._runners)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            runners = list(self._runners)
            self._cond.notify_all()
        for runner in runners:
            runner.close()
