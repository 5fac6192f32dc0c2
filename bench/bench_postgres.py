"""The PostgreSQL the queue benchmark runs against: a throw-away cluster in a temp dir,
stopped at exit, and its ``pg_stat_database`` counters."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench_common import HOST, free_port, make_tempdir, on_cleanup

# --------------------------------------------------------------------------------------
# PostgreSQL: a throw-away cluster in a temp dir, as the postgres user when root
# --------------------------------------------------------------------------------------


def find_pg_bin(explicit: str | None) -> Path | None:
    candidates = [explicit] if explicit else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    found = shutil.which("initdb")
    if found:
        candidates.append(str(Path(found).parent))
    for c in candidates:
        if c and (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    return None


@dataclass
class Postgres:
    bin: Path
    root: Path
    port: int
    postmaster_pid: int
    version: str
    settings: dict[str, str]

    def url(self, db: str) -> str:
        return f"postgresql+asyncpg://postgres@{HOST}:{self.port}/{db}"

    def createdb(self, name: str) -> None:
        subprocess.run(
            [str(self.bin / "createdb"), "-h", HOST, "-p", str(self.port), "-U", "postgres", name],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def db_stats(self, db: str) -> dict[str, int]:
        """Counters of one database from pg_stat_database (backends flush them about once a
        second while busy, so over a long window they are close, not exact)."""
        cols = ["xact_commit", "xact_rollback", "sessions", "tup_inserted", "tup_updated",
                "tup_deleted"]  # fmt: skip
        proc = subprocess.run(
            [str(self.bin / "psql"), "-h", HOST, "-p", str(self.port), "-U", "postgres",
             "-d", "postgres", "-Atc",
             f"SELECT {', '.join(cols)} FROM pg_stat_database WHERE datname = '{db}'"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        values = proc.stdout.strip().split("|")
        if len(values) != len(cols):
            return {}
        return dict(zip(cols, (int(v or 0) for v in values), strict=True))

    def show(self, names: list[str]) -> dict[str, str]:
        out = {}
        for name in names:
            proc = subprocess.run(
                [
                    str(self.bin / "psql"),
                    "-h",
                    HOST,
                    "-p",
                    str(self.port),
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-Atc",
                    f"SHOW {name}",
                ],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            out[name] = proc.stdout.strip() or "?"
        return out


def start_postgres(pg_bin: Path, extra: list[str]) -> Postgres:
    root = make_tempdir("genyard-bench-pg-")
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(root, user="postgres", group="postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, sock, log = root / "data", root / "sock", root / "postgres.log"
    subprocess.run([*as_postgres, "mkdir", str(sock)], check=True, capture_output=True, timeout=30)
    subprocess.run(
        [
            *as_postgres,
            str(pg_bin / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = free_port()
    options = f"-p {port} -k {sock} -c listen_addresses={HOST}"
    for setting in extra:
        options += f" -c {setting}"

    def stop() -> None:
        subprocess.run(
            [
                *as_postgres,
                str(pg_bin / "pg_ctl"),
                "-D",
                str(data),
                "-m",
                "immediate",
                "-w",
                "-t",
                "30",
                "stop",
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
        pidfile = data / "postmaster.pid"
        if pidfile.exists():  # pg_ctl failed: kill the postmaster itself
            with contextlib.suppress(ValueError, ProcessLookupError, OSError):
                os.kill(int(pidfile.read_text().split()[0]), signal.SIGKILL)

    on_cleanup(f"PostgreSQL on port {port}", stop)
    subprocess.run(
        [
            *as_postgres,
            str(pg_bin / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        ],
        check=True,
        capture_output=True,
        timeout=90,
    )
    pid = int((data / "postmaster.pid").read_text().split()[0])
    version = subprocess.run(
        [str(pg_bin / "postgres"), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    pg = Postgres(pg_bin, root, port, pid, version, {})
    pg.settings = pg.show(["shared_buffers", "synchronous_commit", "fsync", "max_connections"])
    return pg
