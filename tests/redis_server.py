"""A throwaway Redis for the tests that share rate-limit counters between processes.

:class:`RedisServer` runs Debian's ``redis-server`` (installed by `make test` through
``scripts/install-redis.sh``) on a free loopback port, in a fresh directory, with
persistence off, and stops it at the end. Where it is not installed, the tests that
need it skip with the reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from postgres_server import free_port

INSTALL_HINT = (
    "redis-server is not installed: run `make test` as root, which installs Debian's "
    "redis-server, or `apt-get install redis-server`"
)


def redis_binary() -> str | None:
    return os.environ.get("REDIS_SERVER") or shutil.which("redis-server")


def unavailable_reason() -> str | None:
    """Why a real Redis cannot run here, or None when it can."""
    if redis_binary() is None:
        return INSTALL_HINT
    try:
        import redis  # noqa: F401
    except ImportError:
        return "the redis client is not installed: pip install -e '.[test,redis]'"
    return None


class RedisServer:
    def __init__(self) -> None:
        binary = redis_binary()
        assert binary is not None, INSTALL_HINT
        self.binary = binary
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="genyard-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20) -> RedisServer:
        self.proc = subprocess.Popen(
            [
                self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.dir), "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--logfile", str(self.dir / "redis.log"),
            ],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = self.log_tail()
                self.stop()
                raise RuntimeError(f"redis-server did not start:\n{log}")
            time.sleep(0.05)
        return self

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def log_tail(self, chars: int = 3000) -> str:
        path = self.dir / "redis.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)
