"""Helpers for the end-to-end suite: a real ``genyard serve`` process on a loopback port.

Each server gets its own data dir and database (the data dir's SQLite file, or a fresh
PostgreSQL database for the ``[postgres]`` variants) and writes stdout/stderr to files
(one pair per start, so a restarted server's output can be read on its own). Tests
talk to it with httpx and run the real ``genyard`` CLI against the same data dir and
database.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from postgres_server import SECRET_KEY, FreshDatabase, free_port

DIAGNOSTIC = "genyard/diagnostic"
E5 = "intfloat/multilingual-e5-small"
FULL_KEY = re.compile(r"gy_live_[0-9a-f]{40}")
TERMINAL = frozenset({"succeeded", "failed", "canceled"})
START_TIMEOUT = 30.0
CLAIMED = re.compile(r'"claimed (\d+) jobs: ([^"]*)"')


class Server:
    """One data dir and database, and the ``genyard serve`` processes started on them,
    one at a time."""

    def __init__(self, root: Path, env: dict[str, str], database: FreshDatabase) -> None:
        self.root = root
        self.database = database
        self.data_dir = root / "data"
        self.logs_dir = root / "logs"
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GENYARD_")}
        self.env.update(
            {
                "GENYARD_DATA_DIR": str(self.data_dir),
                "GENYARD_HOST": "127.0.0.1",
                "GENYARD_PORT": str(self.port),
                "GENYARD_DIAGNOSTIC_MODELS": "1",
                "GENYARD_LOG_FORMAT": "json",
                "GENYARD_POLL_INTERVAL": "0.2",
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.env.update(database.env())
        self.env.update(env)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    # -- process control -------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stderr_path(self, start: int | None = None) -> Path:
        return self.logs_dir / f"serve-{start or self.starts}.stderr"

    def stdout_path(self, start: int | None = None) -> Path:
        return self.logs_dir / f"serve-{start or self.starts}.stdout"

    def start(self, *, wait: bool = True) -> Server:
        """Start ``genyard serve``; with ``wait``, return once it answers /healthz.

        A port picked by :func:`free_port` can be taken by someone else before the
        server binds it: then the server exits and we try again on another port.
        """
        for _ in range(3):
            self._spawn()
            if not wait:
                return self
            if self._wait_bound():
                self.wait_healthy()
                return self
            for path in (self.stdout_path(), self.stderr_path()):
                path.rename(path.with_suffix(f".bind-failed-{self.port}"))
            self.starts -= 1
            self.port = free_port()
            self.env["GENYARD_PORT"] = str(self.port)
        raise AssertionError("could not bind a port:\n" + self.tail())

    def _spawn(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        with (
            self.stdout_path().open("wb") as out,
            self.stderr_path().open("wb") as err,
        ):
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "genyard", "serve"],
                cwd=self.root,
                env=self.env,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )

    def _wait_bound(self, timeout: float = START_TIMEOUT) -> bool:
        """True once this process says it listens on our port; False if the port was taken."""
        assert self.proc is not None
        banner = f"Uvicorn running on {self.url}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if banner in self.stderr():
                return True
            if self.proc.poll() is not None:
                if "address already in use" in self.stderr():
                    return False
                raise AssertionError(
                    f"genyard serve exited with {self.proc.returncode} at start:\n" + self.tail()
                )
            time.sleep(0.05)
        raise AssertionError(f"genyard serve did not listen after {timeout} s:\n" + self.tail())

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"genyard serve exited with {self.proc.returncode} before it was healthy:\n"
                    + self.tail()
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"genyard serve not healthy after {timeout} s:\n" + self.tail())

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"genyard serve still running after {timeout} s:\n" + self.tail()
            ) from None

    def kill(self) -> None:
        """SIGKILL, as a crashed machine or an OOM killer would."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        assert self.wait_exit(10) == -signal.SIGKILL

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- output --------------------------------------------------------------------------

    def stderr(self, start: int | None = None) -> str:
        return self.stderr_path(start).read_text(errors="replace")

    def stdout(self, start: int | None = None) -> str:
        return self.stdout_path(start).read_text(errors="replace")

    def all_output(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.logs_dir.iterdir()) if p.is_file()
        )

    def tail(self, chars: int = 4000) -> str:
        try:
            return self.stderr()[-chars:]
        except FileNotFoundError:
            return "(no stderr)"

    # -- clients -----------------------------------------------------------------------

    @property
    def admin_key(self) -> str:
        return (self.data_dir / "admin-key").read_text().strip()

    def client(self, key: str | None = None, *, bearer: bool = False) -> httpx.Client:
        headers = {}
        if key is not None:
            headers = {"Authorization": f"Bearer {key}"} if bearer else {"X-API-Key": key}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the real ``genyard`` CLI against this server's data dir."""
        result = subprocess.run(
            [sys.executable, "-m", "genyard", *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"genyard {' '.join(args)} exited {result.returncode}:\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}"
            )
        return result

    def db_rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the database directly (SQLite read-only), e.g. while the server is down.
        ``?`` placeholders work on both."""
        return self.database.rows(sql, *params, sqlite_file=self.data_dir / "genyard.db")


# -- API helpers -------------------------------------------------------------------------


def submit(
    client: httpx.Client,
    input: dict[str, Any],
    *,
    model: str = DIAGNOSTIC,
    wait: float | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    extra = dict(headers or {})
    if wait is not None:
        extra["Prefer"] = f"wait={wait:g}"
    response = client.post("/v1/predictions", json={"model": model, "input": input}, headers=extra)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def get(client: httpx.Client, prediction_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/predictions/{prediction_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_until(
    client: httpx.Client,
    prediction_id: str,
    predicate: Callable[[dict[str, Any]], bool],
    *,
    timeout: float = 30,
    what: str = "",
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job = get(client, prediction_id)
    while not predicate(job):
        if time.monotonic() > deadline:
            raise AssertionError(f"{prediction_id} never became {what}: {job}")
        time.sleep(0.05)
        job = get(client, prediction_id)
    return job


def wait_status(
    client: httpx.Client, prediction_id: str, *statuses: str, timeout: float = 30
) -> dict[str, Any]:
    return wait_until(
        client,
        prediction_id,
        lambda j: j["status"] in statuses,
        timeout=timeout,
        what=" or ".join(statuses),
    )


def wait_all_terminal(
    client: httpx.Client, ids: list[str], *, timeout: float = 60
) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    done: dict[str, dict[str, Any]] = {}
    while True:
        for job_id in ids:
            if job_id not in done:
                job = get(client, job_id)
                if job["status"] in TERMINAL:
                    done[job_id] = job
        if len(done) == len(ids):
            return done
        if time.monotonic() > deadline:
            stuck = {i: get(client, i)["status"] for i in ids if i not in done}
            raise AssertionError(f"jobs not terminal after {timeout} s: {stuck}")
        time.sleep(0.1)


def succeeded_lines(job: dict[str, Any]) -> list[str]:
    return [line for line in job["logs"].splitlines() if line.startswith("succeeded on attempt")]


def long_texts(count: int) -> list[str]:
    """Texts of ~480 tokens each: about a second apiece for e5 on one core."""
    return [f"{i} " + "the quick brown fox jumps over the lazy dog " * 40 for i in range(count)]


def table_rows(text: str) -> list[list[str]]:
    """The rows of a CLI listing (tab-separated, header first), as lists of cells."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines and "\t" in lines[0], text
    return [line.split("\t") for line in lines[1:]]


class Cluster:
    """One PostgreSQL database, one `genyard api` and any number of `genyard worker`s."""

    def __init__(self, root: Path, database_url: str, **env: str) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GENYARD_")}
        self.env.update(
            GENYARD_DATA_DIR=str(root / "data"),
            GENYARD_DATABASE_URL=database_url,
            GENYARD_SECRET_KEY=SECRET_KEY,
            GENYARD_HOST="127.0.0.1",
            GENYARD_PORT=str(self.port),
            GENYARD_DIAGNOSTIC_MODELS="1",
            GENYARD_POLL_INTERVAL="0.2",
            GENYARD_LEASE_SECONDS="2",
            GENYARD_REAPER_INTERVAL="0.3",
            GENYARD_SHUTDOWN_GRACE="1",
            PYTHONUNBUFFERED="1",
        )
        self.env.update(env)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        with (self.root / f"{name}.stderr").open("ab") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "genyard", *args],
                cwd=self.root,
                env={**self.env, **env},
                stdout=err,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
        self.procs[name] = proc
        return proc

    def start_api(self) -> None:
        self.spawn("api", "api")
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.procs["api"].poll() is None, self.log("api")
            assert time.monotonic() < deadline, "the API never answered:\n" + self.log("api")
            time.sleep(0.1)

    def start_worker(self, name: str, *args: str) -> None:
        self.spawn(name, "worker", *args, GENYARD_LOG_LEVEL="DEBUG")
        deadline = time.monotonic() + 30
        while "worker started" not in self.log(name):
            assert self.procs[name].poll() is None, self.log(name)
            assert time.monotonic() < deadline, "the worker never started:\n" + self.log(name)
            time.sleep(0.1)

    def signal(self, name: str, sig: int) -> None:
        self.procs[name].send_signal(sig)
        if sig == signal.SIGKILL:
            self.procs[name].wait(timeout=10)

    def claimed_by(self, name: str) -> list[str]:
        """The job ids a worker's log says it claimed."""
        return [j for _, ids in CLAIMED.findall(self.log(name)) for j in ids.split()]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_key(self) -> str:
        return (self.root / "data" / "admin-key").read_text().strip()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Key": self.admin_key}, timeout=60)

    def log(self, name: str) -> str:
        path = self.root / f"{name}.stderr"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait(timeout=10)
