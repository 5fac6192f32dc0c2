"""Shared pieces of the queue benchmark: constants, the measurement plans, clean-up of
everything the benchmark starts, process and temp-dir helpers, a blocking JSON client."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_MD = ROOT / "bench" / "RESULTS.md"
HOST = "127.0.0.1"

# Targets for this 2-core machine (the acceptance numbers).
TARGET_THROUGHPUT = 300.0  # predictions/s, echo, either database
TARGET_QUEUE_P50_MS = 10.0  # created -> started, 1 client
TARGET_IDLE_RSS_MB = 150.0  # genyard serve after start-up and one /healthz

ECHO = {"model": "genyard/diagnostic", "input": {"mode": "echo", "payload": 1}}
E5 = {"model": "intfloat/multilingual-e5-small", "input": {"text": "some short sentence"}}
WAIT_HEADER = "wait=10"


@dataclass(frozen=True)
class Plan:
    """How long each measurement runs."""

    name: str
    warmup_s: int
    echo_s: int
    e5_s: int
    sequential_n: int
    open_loop_s: int


FULL = Plan("full", warmup_s=5, echo_s=25, e5_s=25, sequential_n=300, open_loop_s=20)
QUICK = Plan("quick", warmup_s=2, echo_s=5, e5_s=5, sequential_n=100, open_loop_s=5)

# --------------------------------------------------------------------------------------
# Clean-up: every process and directory this script makes is registered here and
# undone at exit, on error, on Ctrl-C and on SIGTERM.
# --------------------------------------------------------------------------------------

_cleanups: list[tuple[str, Callable[[], None]]] = []


def on_cleanup(label: str, fn: Callable[[], None]) -> None:
    _cleanups.append((label, fn))


def run_cleanups() -> None:
    while _cleanups:
        label, fn = _cleanups.pop()
        try:
            fn()
        except Exception as exc:
            print(f"bench: clean-up of {label} failed: {exc!r}", file=sys.stderr)


def on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def stop_process(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM the process's group (each child runs in its own session), then SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def spawn(argv: list[str], *, env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    on_cleanup(
        f"{Path(argv[0]).name} {argv[1] if len(argv) > 1 else ''} (pid {proc.pid})",
        lambda: stop_process(proc),
    )
    return proc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def make_tempdir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    on_cleanup(f"rm {path}", lambda: shutil.rmtree(path, ignore_errors=True))
    return path


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------------------

# --------------------------------------------------------------------------------------
# A small blocking HTTP helper for set-up and for reading the jobs back
# --------------------------------------------------------------------------------------


def http_json(
    method: str, url: str, key: str | None = None, body: Any = None, timeout: float = 60
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if key:
        req.add_header("X-API-Key", key)
    if data is not None:
        req.add_header("Content-Type", "application/json")
        req.add_header("Prefer", "wait=30")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw.decode(errors="replace")
