"""Measurements of the queue benchmark: memory and CPU time from /proc (the server, the
PostgreSQL tree, this script and wrk, the rest of the machine), the queue depth, and the
jobs' own ``metrics.queue_time`` read back through the API."""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench_common import http_json

# /proc readings: memory, CPU time
# --------------------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def proc_cpu_s(pid: int, reaped_children: bool = False) -> float:
    """utime + stime of one process (all its threads), in seconds; 0 when it is gone. With
    ``reaped_children``, plus what its exited children used (cutime + cstime): for the
    postmaster, the backends of connections that closed during the window."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def process_tree(root: int) -> list[int]:
    """root and its descendants (for the postmaster: every backend)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def system_cpu_s() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine since boot, all cores together."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = parts
    return (user + nice + system + irq + softirq + steal) / CLK_TCK, steal / CLK_TCK


@dataclass
class CpuWindow:
    """CPU spent during a measured window: by the server process(es), by PostgreSQL, by
    this script and its children (wrk), and by everything else on the machine (noise)."""

    server_pids: list[int]
    pg_root: int | None
    wall0: float = 0.0
    server0: float = 0.0
    pg0: float = 0.0
    own0: float = 0.0
    sys0: tuple[float, float] = (0.0, 0.0)
    result: dict[str, float] = field(default_factory=dict)

    def _pg(self) -> float:
        if not self.pg_root:
            return 0.0
        live = sum(proc_cpu_s(p) for p in process_tree(self.pg_root) if p != self.pg_root)
        return live + proc_cpu_s(self.pg_root, reaped_children=True)

    @staticmethod
    def _own() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def __enter__(self) -> CpuWindow:
        self.wall0 = time.monotonic()
        self.server0 = sum(proc_cpu_s(p) for p in self.server_pids)
        self.pg0 = self._pg()
        self.own0 = self._own()
        self.sys0 = system_cpu_s()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.monotonic() - self.wall0
        server = sum(proc_cpu_s(p) for p in self.server_pids) - self.server0
        pg = self._pg() - self.pg0
        own = self._own() - self.own0
        busy, steal = system_cpu_s()
        busy -= self.sys0[0]
        steal -= self.sys0[1]
        self.result = {
            "wall_s": wall,
            "server_cpu_s": server,
            "pg_cpu_s": pg,
            "loadgen_cpu_s": own,
            "other_cores": max(0.0, busy - server - pg - own) / wall if wall else 0.0,
            "steal_cores": steal / wall if wall else 0.0,
        }


# --------------------------------------------------------------------------------------
# The queue, read back through the API
# --------------------------------------------------------------------------------------


def queue_depth(base: str) -> int:
    with urllib.request.urlopen(f"{base}/metrics", timeout=30) as resp:
        text = resp.read().decode()
    return sum(
        int(float(m.group(1)))
        for m in re.finditer(r"^genyard_queue_depth\{[^}]*\} (\S+)$", text, re.MULTILINE)
    )


def wait_drained(base: str, timeout: float = 60) -> None:
    """Wait until no job is pending, so a phase's leftovers never count in the next."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if queue_depth(base) == 0:
            time.sleep(0.5)  # the last claimed jobs finish
            return
        time.sleep(0.25)
    print("bench: warning: the queue did not drain", file=sys.stderr)


def parse_iso(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def fetch_queue_times(
    base: str, keys: list[str], model: str, t0: float, t1: float
) -> tuple[list[float], dict[str, int]]:
    """``metrics.queue_time`` (seconds) of every job of ``model`` created in [t0, t1],
    read back page by page (newest first) through ``GET /v1/predictions``, per account."""
    times: list[float] = []
    statuses: dict[str, int] = {}
    lo, hi = t0 - 0.002, t1 + 0.002  # created_at is rendered in milliseconds
    for key in keys:
        cursor: str | None = None
        while True:
            query = {"limit": "100", "model": model}
            if cursor:
                query["cursor"] = cursor
            status, page = http_json(
                "GET", f"{base}/v1/predictions?{urllib.parse.urlencode(query)}", key
            )
            if status != 200:
                raise RuntimeError(f"GET /v1/predictions answered {status}: {page}")
            older = False
            for item in page["data"]:
                created = parse_iso(item["created_at"])
                if created > hi:
                    continue
                if created < lo:
                    older = True
                    break
                statuses[item["status"]] = statuses.get(item["status"], 0) + 1
                queue_time = (item.get("metrics") or {}).get("queue_time")
                if queue_time is not None:
                    times.append(float(queue_time))
            if older or not page["has_more"]:
                break
            cursor = page["next_cursor"]
    return times, statuses


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return ordered[rank - 1]
