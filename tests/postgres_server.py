"""The databases the suites run on: SQLite files, and one real PostgreSQL 15 per session.

:class:`PostgresServer` runs Debian's ``postgresql-15`` binaries on a throwaway
cluster: ``initdb`` into a fresh directory in ``/dev/shm`` (or ``/tmp``), owned by
the ``postgres`` user when we are root since PostgreSQL refuses to run as root;
``pg_ctl start`` on a free loopback port with durability switched off; and
``pg_ctl stop -m fast`` at the end. The superuser ``postgres`` administers it over
the unix socket (trust); genyard connects as the unprivileged role ``genyard`` over
TCP with a password (scram-sha-256), as a deployment would. Every server or app
under test gets its own ``CREATE DATABASE gy_<random>``, owned by ``genyard``, so
tests never share state.

:class:`Databases` hands out fresh databases of one kind (``sqlite`` or
``postgres``) as :class:`FreshDatabase` values: the settings or ``GENYARD_*``
variables that point genyard at it, and a way to read it directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import random
import re
import secrets
import shlex
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

# Debian's postgresql-15 (installed by `make test`); PG_BIN=... points elsewhere.
PG_BIN = Path(os.environ.get("PG_BIN") or "/usr/lib/postgresql/15/bin")
INSTALL_HINT = (
    "PostgreSQL 15 is not installed ({missing} is missing): run `make test` as root, "
    "which installs Debian's postgresql-15, or `apt-get install postgresql-15`"
)
KINDS = ("sqlite", "postgres")
ROLE = "genyard"
ROLE_PASSWORD = "genyard-test-password"
SECRET_KEY = "genyard-test-secret-key-0123456789abcdef"
# Durability off (a test cluster is thrown away), room for many connection pools, and
# a bounded WAL (the cluster may live in memory).
SERVER_OPTIONS = (
    "-c listen_addresses=127.0.0.1",
    "-c fsync=off",
    "-c synchronous_commit=off",
    "-c full_page_writes=off",
    "-c max_connections=300",
    "-c shared_buffers=64MB",
    "-c max_wal_size=256MB",
    "-c checkpoint_timeout=30min",
    "-c log_min_messages=warning",
    "-c log_checkpoints=off",
)

T = TypeVar("T")


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot run here; the message says why and what to install."""


def unavailable_reason() -> str | None:
    """Why the PostgreSQL tests cannot run here, or None when they can."""
    for binary in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / binary).is_file():
            return INSTALL_HINT.format(missing=PG_BIN / binary)
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "PostgreSQL must not run as root and there is no `postgres` user to run it"
        if shutil.which("runuser") is None:
            return "runuser (util-linux) is needed to run PostgreSQL as the postgres user"
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        return "asyncpg is not installed: pip install -e '.[test,postgres]'"
    return None


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range (where bind(0) and
    outgoing connections take theirs), so that it stays free until a server binds it."""
    for _ in range(100):
        port = random.randrange(20000, 32000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def _scratch_dir() -> str | None:
    """Where the cluster lives: in memory (``/dev/shm``) when it has room, where
    CREATE DATABASE takes milliseconds instead of a disk's tenths of a second; else
    ``/tmp``. Never a TMPDIR inside root's home: the postgres user must reach it, and
    the socket path in it must stay short."""
    for candidate, room in (("/dev/shm", 2 << 30), ("/tmp", 0)):
        try:
            stat = os.statvfs(candidate)
        except OSError:
            continue
        if stat.f_bavail * stat.f_frsize >= room and os.access(candidate, os.W_OK):
            return candidate
    return None


class _Loop:
    """An event loop in a thread, so that sync and async code alike can run admin
    statements (an async fixture cannot call ``asyncio.run``)."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


class PostgresServer:
    """One throwaway PostgreSQL cluster: ``start()``, ``create_database()``, ``stop()``."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="genyard-pg-", dir=_scratch_dir()))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = 0
        self._as_postgres = os.geteuid() == 0
        self._loop: _Loop | None = None
        self._admin: Any = None  # an asyncpg connection as the superuser
        self._lock = threading.Lock()
        self._started = False
        self._watchdog: subprocess.Popen[bytes] | None = None

    # -- process control -----------------------------------------------------------

    def _cmd(self, binary: str, *args: str) -> list[str]:
        command = [str(PG_BIN / binary), *args]
        return ["runuser", "-u", "postgres", "--", *command] if self._as_postgres else command

    def _run(self, binary: str, *args: str, timeout: float = 60) -> None:
        result = subprocess.run(
            self._cmd(binary, *args),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if result.returncode != 0:
            raise PostgresUnavailable(
                f"{binary} {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}\n{self.log_tail()}"
            )

    def start(self) -> PostgresServer:
        reason = unavailable_reason()
        if reason:
            raise PostgresUnavailable(reason)
        password_file = self.root / "superuser-password"
        password_file.write_text(secrets.token_hex(16) + "\n")
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            for path in (self.root, password_file):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o700)
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", f"--pwfile={password_file}",
            "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync",
            "--no-instructions", "--encoding=UTF8", "--locale=C",
        )  # fmt: skip
        password_file.unlink()
        for attempt in range(3):
            self.port = free_port()
            options = f"-k {self.root} -p {self.port} " + " ".join(SERVER_OPTIONS)
            try:
                self._run(
                    "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                    "-w", "-t", "60", "start",
                )  # fmt: skip
                break
            except PostgresUnavailable:
                # Someone took the port between our check and the bind: try another.
                if attempt == 2 or "could not bind" not in self.log_tail():
                    raise
        self._started = True
        self._start_watchdog()
        self._loop = _Loop()
        self._admin = self._loop.run(self._connect("postgres"))
        self.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{ROLE_PASSWORD}'")
        return self

    def _start_watchdog(self) -> None:
        """Should this process die without its teardown (SIGKILL, a CI timeout), a
        watchdog stops the server and deletes its files, so none is left running."""
        stop = shlex.join(self._cmd("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop"))
        script = f'while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; {stop}; rm -rf "$0"'
        self._watchdog = subprocess.Popen(
            ["sh", "-c", script, str(self.root)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C meant for pytest leaves it be
        )

    def stop(self) -> None:
        """Stop the server and delete its files; safe to call twice."""
        if self._watchdog is not None:
            self._watchdog.kill()
            self._watchdog.wait()
            self._watchdog = None
        if self._loop is not None:
            if self._admin is not None:
                with contextlib.suppress(Exception):  # the server goes away below anyway
                    self._loop.run(self._admin.close(), timeout=10)
                self._admin = None
            self._loop.close()
            self._loop = None
        if self._started:
            self._started = False
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
            except (PostgresUnavailable, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no server log)"

    # -- databases -----------------------------------------------------------------

    async def _connect(self, database: str) -> Any:
        import asyncpg

        # The superuser over the unix socket (trust), so no password is needed.
        return await asyncpg.connect(
            host=str(self.root), port=self.port, user="postgres", database=database
        )

    def execute(self, sql: str) -> None:
        """Run one admin statement (as the superuser, on the ``postgres`` database)."""
        assert self._loop is not None, "the server is not running"
        with self._lock:
            self._loop.run(self._admin.execute(sql))

    def url(self, name: str) -> str:
        """The URL genyard uses for database ``name`` (role ``genyard`` over TCP)."""
        return f"postgresql+asyncpg://{ROLE}:{ROLE_PASSWORD}@127.0.0.1:{self.port}/{name}"

    def create_database(self) -> str:
        """A new, empty database owned by ``genyard``; returns its name."""
        name = f"gy_{secrets.token_hex(6)}"
        self.execute(f"CREATE DATABASE {name} OWNER {ROLE}")
        return name

    def drop_database(self, name: str) -> None:
        self.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def query(self, name: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of ``sql`` on database ``name``; ``?`` placeholders as in sqlite3."""
        count = iter(range(1, 1000))
        sql = re.sub(r"\?", lambda _: f"${next(count)}", sql)

        async def fetch() -> list[tuple[Any, ...]]:
            conn = await self._connect(name)
            try:
                return [tuple(r) for r in await conn.fetch(sql, *params)]
            finally:
                await conn.close()

        assert self._loop is not None, "the server is not running"
        return self._loop.run(fetch())


@dataclass(frozen=True)
class FreshDatabase:
    """One empty database for one app or server under test."""

    kind: str
    name: str
    url: str | None  # None: SQLite in the data dir (genyard's default)
    server: PostgresServer | None = field(default=None, repr=False)

    @property
    def is_postgres(self) -> bool:
        return self.kind == "postgres"

    def settings(self) -> dict[str, Any]:
        """``load_settings`` overrides that point genyard at this database."""
        if not self.is_postgres:
            return {}
        return {"database_url": self.url, "secret_key": SECRET_KEY}

    def env(self) -> dict[str, str]:
        """The same as ``GENYARD_*`` variables, for subprocesses."""
        return {f"GENYARD_{k.upper()}": str(v) for k, v in self.settings().items()}

    def sqlalchemy_url(self, sqlite_file: Path) -> str:
        """The URL to open it with (SQLite: ``sqlite_file``, genyard's default name)."""
        return self.url or f"sqlite+aiosqlite:///{sqlite_file}"

    def rows(self, sql: str, *params: Any, sqlite_file: Path) -> list[tuple[Any, ...]]:
        """Read the database directly (SQLite read-only), e.g. while the server is down."""
        if self.server is not None:
            return self.server.query(self.name, sql, *params)
        conn = sqlite3.connect(f"file:{sqlite_file}?mode=ro", uri=True)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()


class Databases:
    """Fresh databases of one kind; ``drop_all()`` removes the PostgreSQL ones."""

    def __init__(self, kind: str, server: PostgresServer | None) -> None:
        assert kind in KINDS, kind
        assert (kind == "postgres") == (server is not None)
        self.kind = kind
        self.server = server
        self._created: list[str] = []

    def new(self) -> FreshDatabase:
        if self.server is None:
            return FreshDatabase(self.kind, "genyard.db", None)
        name = self.server.create_database()
        self._created.append(name)
        return FreshDatabase(self.kind, name, self.server.url(name), self.server)

    def drop_all(self) -> None:
        while self.server is not None and self._created:
            self.server.drop_database(self._created.pop())


def start_postgres() -> PostgresServer:
    """Start a server, or raise :class:`PostgresUnavailable` with the reason."""
    server = PostgresServer()
    try:
        return server.start()
    except BaseException:
        server.stop()
        raise
