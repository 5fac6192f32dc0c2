"""The genyard server under test: its environment (``--ref``/``--src`` snapshots
included), the accounts made with the CLI, and starting and stopping ``genyard serve`` or
``genyard api`` + ``genyard worker``."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_common import (
    HOST,
    ROOT,
    free_port,
    http_json,
    log_tail,
    make_tempdir,
    spawn,
    stop_process,
)
from bench_postgres import Postgres

# --------------------------------------------------------------------------------------
# The server under test
# --------------------------------------------------------------------------------------


def genyard_bin() -> Path:
    for candidate in (Path(sys.executable).parent / "genyard", ROOT / ".venv" / "bin" / "genyard"):
        if candidate.exists():
            return candidate
    found = shutil.which("genyard")
    if not found:
        raise SystemExit("bench: the genyard command is missing: run `make bench` (installs it)")
    return Path(found)


# Set by --ref: a `git archive` snapshot of src/ that the server and CLI import instead of
# the working tree (the installed package is an editable install of ./src).
SNAPSHOT_SRC: Path | None = None
REF_COMMIT: str | None = None


def snapshot(ref: str) -> tuple[Path, str]:
    """Extract ``src/`` at ``ref`` into a temp dir; returns it and the short commit."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", f"{ref}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    dest = make_tempdir("genyard-bench-src-")
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref, "src"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest / "src", commit


def base_env(data_dir: Path, port: int, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENYARD_")}
    if SNAPSHOT_SRC is not None:
        env["PYTHONPATH"] = str(SNAPSHOT_SRC)
    env.update(
        GENYARD_DATA_DIR=str(data_dir),
        GENYARD_HOST=HOST,
        GENYARD_PORT=str(port),
        GENYARD_DIAGNOSTIC_MODELS="1",
        GENYARD_LOG_LEVEL="WARNING",
        GENYARD_MAX_PENDING_PER_ACCOUNT="1000000",
        # The queue benchmark drives free-tier keys far past their rate limits (30 a
        # minute); it measures the queue, so counting is off (issue 5's benchmark of
        # limits on versus off is its own run).
        GENYARD_RATE_LIMITS="off",
        # Likewise billing: its accounts start with 10 credits, a thousand echo jobs.
        GENYARD_BILLING="off",
        GENYARD_SHUTDOWN_GRACE="2",
    )
    if database_url:
        env["GENYARD_DATABASE_URL"] = database_url
        env["GENYARD_SECRET_KEY"] = "bench-" + os.urandom(16).hex()
    return env


def create_accounts(env: dict[str, str], cwd: Path, users: int) -> list[str]:
    """``users`` users, one account each, and one full-access key per user (CLI)."""
    exe = str(genyard_bin())

    def cli(*args: str) -> str:
        proc = subprocess.run(
            [exe, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=180
        )
        if proc.returncode != 0:
            raise RuntimeError(f"genyard {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
        return proc.stdout

    names = [f"bench{i}" for i in range(users)]
    cli("users", "create", names[0])  # migrations settle before the parallel calls
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda n: cli("users", "create", n), names[1:]))
        outputs = list(pool.map(lambda n: cli("keys", "create", "--user", n), names))
    keys = [out.strip().splitlines()[-1].strip() for out in outputs]
    bad = [k for k in keys if not k.startswith("gy_")]
    if bad:
        raise RuntimeError(f"unexpected key lines: {bad}")
    return keys


@dataclass
class Layout:
    db: str  # "SQLite" or "PostgreSQL"
    layout: str  # "serve" or "api+worker"

    @property
    def label(self) -> str:
        return f"{self.db}, " + (
            "`genyard serve` (1 process)"
            if self.layout == "serve"
            else "`genyard api` + 1 `genyard worker`"
        )


@dataclass
class Running:
    dbname: str | None
    base: str
    port: int
    pids: dict[str, int]
    procs: list[tuple[subprocess.Popen[bytes], Path]]
    env: dict[str, str]
    workdir: Path


@contextlib.contextmanager
def server(
    layout: Layout, pg: Postgres | None, extra_env: dict[str, str] | None = None
) -> Iterator[Running]:
    """Start the layout; ``extra_env`` overrides settings (e.g. billing on)."""
    workdir = make_tempdir("genyard-bench-")
    port = free_port()
    url = dbname = None
    if pg is not None:
        dbname = f"bench_{layout.layout.replace('+', '_')}_{os.getpid()}_{port}"
        pg.createdb(dbname)
        url = pg.url(dbname)
    env = base_env(workdir / "data", port, url) | (extra_env or {})
    exe = str(genyard_bin())
    started: list[tuple[subprocess.Popen[bytes], Path]] = []
    pids: dict[str, int] = {}
    try:
        first = "serve" if layout.layout == "serve" else "api"
        log = workdir / f"{first}.log"
        proc = spawn([exe, first], env=env, cwd=workdir, log=log)
        started.append((proc, log))
        pids[first] = proc.pid
        base = f"http://{HOST}:{port}"
        wait_healthy(base, started)
        if layout.layout != "serve":
            log = workdir / "worker.log"
            wproc = spawn([exe, "worker"], env=env, cwd=workdir, log=log)
            started.append((wproc, log))
            pids["worker"] = wproc.pid
        for name, pid in pids.items():  # measure python itself, never a wrapper
            exe_path = os.readlink(f"/proc/{pid}/exe")
            if "python" not in Path(exe_path).name:
                raise RuntimeError(f"{name} pid {pid} runs {exe_path}, not python")
        yield Running(dbname, base, port, pids, started, env, workdir)
    finally:
        for proc, _ in reversed(started):
            stop_process(proc)
        for proc, log in started:
            if proc.returncode not in (0, -signal.SIGTERM, None):
                print(
                    f"bench: {log.name} exited {proc.returncode}:\n{log_tail(log)}", file=sys.stderr
                )


def wait_healthy(base: str, procs: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for proc, log in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}:\n{log_tail(log)}")
        with contextlib.suppress(OSError, ValueError):
            status, _ = http_json("GET", f"{base}/healthz", timeout=5)
            if status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{base}/healthz did not answer 200 within 120 s")


def smoke(base: str, key: str, body: dict[str, Any]) -> None:
    """One prediction that must succeed (the worker is up, the model loads)."""
    deadline = time.monotonic() + 120
    while True:
        status, data = http_json("POST", f"{base}/v1/predictions", key, body, timeout=60)
        if status == 201 and isinstance(data, dict) and data.get("status") == "succeeded":
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"smoke prediction did not succeed: {status} {data}")
        time.sleep(0.5)
