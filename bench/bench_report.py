"""Rendering the queue benchmark's results: the machine, the Markdown table, and the
record appended to bench/RESULTS.md."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bench_servers
from bench_common import (
    RESULTS_MD,
    ROOT,
    TARGET_IDLE_RSS_MB,
    TARGET_QUEUE_P50_MS,
    TARGET_THROUGHPUT,
    WAIT_HEADER,
    Plan,
)
from bench_load import LoadResult
from bench_measure import percentile
from bench_postgres import Postgres

# --------------------------------------------------------------------------------------


def ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.1f}"


def fmt_rss(rss: dict[str, float]) -> str:
    return ", ".join(f"{name} {mb:.0f} MB" for name, mb in rss.items())


def wrk_problems(res: dict[str, Any]) -> str:
    parts = [f"{code}: {n}" for code, n in sorted(res["codes"].items())]
    if res["not_done"]:
        parts.append(f"201 not succeeded: {res['not_done']}")
    errors = {k: v for k, v in res["errors"].items() if v}
    parts += [f"socket {k}: {v}" for k, v in errors.items()]
    return ", ".join(parts)


def verdict(ok: bool) -> str:
    return "ok" if ok else "**MISS**"


def machine_info() -> dict[str, str]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    commit = (
        subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        or "?"
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    commit += "+dirty" if dirty else ""
    ref_commit = bench_servers.REF_COMMIT
    if ref_commit and ref_commit.startswith("--src"):
        commit = f"{ref_commit} (working tree {commit})"
    elif ref_commit:
        commit = f"{ref_commit} (--ref snapshot of src/; working tree {commit})"
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "commit": commit,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def report(
    results: list[dict[str, Any]],
    plan: Plan,
    args: argparse.Namespace,
    pg: Postgres | None,
    wrk_version: str,
    when: dt.datetime,
    info: dict[str, str],
) -> str:
    lines = [
        f"## {when:%Y-%m-%d %H:%M} UTC, {info['commit']}, {plan.name} mode",
        "",
        f"- machine: {info['nproc']} cores ({info['cpu']}), {info['ram']} RAM, "
        f"Linux {info['kernel']}, Python {info['python']}, {wrk_version}",
        f"- load: `wrk -t2 -c{args.clients}` for {plan.echo_s} s (echo) and {plan.e5_s} s (e5) "
        f"after a discarded {plan.warmup_s} s warm-up; {plan.sequential_n} sequential requests; "
        f"open loop for {plan.open_loop_s} s; {args.users} accounts; `Prefer: {WAIT_HEADER}`; "
        "load generator on the same machine",
    ]
    if pg is not None:
        s = pg.settings
        lines.append(
            f"- {pg.version}: shared_buffers={s.get('shared_buffers')}, "
            f"synchronous_commit={s.get('synchronous_commit')}, fsync={s.get('fsync')}"
            + (f", extra: {' '.join(args.pg_setting)}" if args.pg_setting else "")
            + "; same machine, same 2 cores"
        )
    if not results:
        return "\n".join(lines) + "\n"
    lines += [
        "",
        "| measurement | target | " + " | ".join(r["layout"].label for r in results) + " |",
    ]
    lines.append("|---|---|" + "---|" * len(results))

    def row(name: str, target: str, cell: Callable[[dict[str, Any]], str]) -> None:
        cells = []
        for r in results:
            try:
                cells.append(cell(r))
            except (KeyError, TypeError, ZeroDivisionError):
                cells.append("n/a")
        lines.append(f"| {name} | {target} | " + " | ".join(cells) + " |")

    def rate_cell(key: str, target: float | None) -> Callable[[dict[str, Any]], str]:
        def cell(r: dict[str, Any]) -> str:
            rate = r[key]["rate"]
            text = f"{rate:.1f}"
            return text + (f" ({verdict(rate >= target)})" if target else "")

        return cell

    def pct_cell(values: list[float], count: bool = False) -> str:
        text = f"{ms(percentile(values, 50))} / {ms(percentile(values, 99))}"
        return text + (f" (n={len(values)})" if count else "")

    def cpu_per_pred(key: str) -> Callable[[dict[str, Any]], str]:
        def cell(r: dict[str, Any]) -> str:
            res = r[key]
            cpu, ok = res["cpu"], max(1, res["ok"])
            text = f"{cpu['server_cpu_s'] * 1000 / ok:.2f}"
            if r["layout"].db == "PostgreSQL":
                text += f" + PG {cpu['pg_cpu_s'] * 1000 / ok:.2f}"
            return text + f" (wrk {cpu['loadgen_cpu_s'] * 1000 / ok:.2f})"

        return cell

    def wrk_pct(key: str) -> Callable[[dict[str, Any]], str]:
        def cell(r: dict[str, Any]) -> str:
            return f"{r[key]['p50_us'] / 1000:.1f} / {r[key]['p99_us'] / 1000:.1f}"

        return cell

    def noise(key: str) -> Callable[[dict[str, Any]], str]:
        def cell(r: dict[str, Any]) -> str:
            cpu = r[key]
            return f"{cpu['other_cores']:.2f} (steal {cpu['steal_cores']:.2f})"

        return cell

    def idle_rss(r: dict[str, Any]) -> str:
        rss = r["idle_rss"]
        if "serve" in rss:
            return f"{rss['serve']:.0f} ({verdict(rss['serve'] < TARGET_IDLE_RSS_MB)})"
        return "n/a: " + fmt_rss(rss)

    def seq_p50(r: dict[str, Any]) -> str:
        p50 = percentile(r["seq_queue"], 50)
        return pct_cell(r["seq_queue"], True) + (
            "" if p50 is None else f" ({verdict(p50 * 1000 < TARGET_QUEUE_P50_MS)})"
        )

    def half_rate(r: dict[str, Any]) -> str:
        h = r["half"]
        achieved = h.sent / max(1e-9, h.t1 - h.t0)
        return f"{r['half_rate']:.0f} (sent {achieved:.0f}/s over {h.t1 - h.t0:.1f} s)"

    def load_problems(res: LoadResult) -> str:
        parts = [f"{c}: {n}" for c, n in sorted(res.codes.items())]
        if res.not_done:
            parts.append(f"201 not succeeded: {res.not_done}")
        if res.errors:
            parts.append(f"socket errors: {res.errors}")
        return ", ".join(parts) or "none"

    row(
        "echo throughput (pred/s, 201 + succeeded)",
        f">= {TARGET_THROUGHPUT:.0f}",
        rate_cell("echo", TARGET_THROUGHPUT),
    )
    row("echo: other answers", "none", lambda r: wrk_problems(r["echo"]) or "none")
    row(
        "echo: jobs created in the window (server) / counted (wrk)",
        "",
        lambda r: f"{sum(r['echo']['statuses'].values())} / {r['echo']['ok']}",
    )
    row("echo: round trip p50 / p99 (ms, wrk)", "", wrk_pct("echo"))
    row("echo: queue_time p50 / p99 at peak (ms)", "", lambda r: pct_cell(r["echo"]["queue"], True))
    row("echo: CPU ms per prediction (server + PG; wrk)", "", cpu_per_pred("echo"))

    def pg_per_prediction(r: dict[str, Any]) -> str:
        stats, ok = r["echo"]["pg_stats"], max(1, r["echo"]["ok"])
        return (
            f"{stats['xact_commit'] / ok:.1f} / {stats['xact_rollback'] / ok:.1f} / "
            f"{stats['sessions'] / ok:.2f}; rows ins {stats['tup_inserted'] / ok:.1f}, "
            f"upd {stats['tup_updated'] / ok:.1f}, del {stats['tup_deleted'] / ok:.1f}"
        )

    if any(r["layout"].db == "PostgreSQL" for r in results):
        row(
            "echo, PG per prediction: commits / rollbacks / new connections; rows (approx.)",
            "",
            pg_per_prediction,
        )
    row("queue_time p50 / p99, 1 client (ms)", f"p50 < {TARGET_QUEUE_P50_MS:.0f}", seq_p50)
    row("1 client: round trip p50 / p99 (ms)", "", lambda r: pct_cell(r["seq"].latencies))
    row("1 client: other answers", "none", lambda r: load_problems(r["seq"]))
    row("half peak: rate (pred/s, open loop)", "", half_rate)
    row("queue_time p50 / p99 at half peak (ms)", "", lambda r: pct_cell(r["half_queue"], True))
    row(
        "half peak: round trip from due time p50 / p99 (ms)",
        "",
        lambda r: pct_cell(r["half"].latencies),
    )
    row(
        "half peak: open-loop client CPU (cores)",
        "",
        lambda r: f"{r['half_cpu']['loadgen_cpu_s'] / r['half_cpu']['wall_s']:.2f}",
    )
    row(
        "half peak: other answers; sends > 5 ms late",
        "",
        lambda r: f"{load_problems(r['half'])}; {r['half'].late_sends}",
    )
    row("e5 throughput (pred/s)", "", rate_cell("e5", None))
    row("e5: other answers", "none", lambda r: wrk_problems(r["e5"]) or "none")
    row("e5: round trip p50 / p99 (ms, wrk)", "", wrk_pct("e5"))
    row("e5: queue_time p50 / p99 at peak (ms)", "", lambda r: pct_cell(r["e5"]["queue"], True))
    row("e5: CPU ms per prediction (server + PG; wrk)", "", cpu_per_pred("e5"))
    row("idle RSS of `genyard serve` (MB)", f"< {TARGET_IDLE_RSS_MB:.0f}", idle_rss)
    row("RSS at the end, e5 loaded (MB)", "", lambda r: fmt_rss(r["final_rss"]))
    row("noise: other processes' CPU during echo (cores)", "", lambda r: noise("cpu")(r["echo"]))
    row("noise: other processes' CPU during e5 (cores)", "", lambda r: noise("cpu")(r["e5"]))
    row(
        "load average (1 min) before / after",
        "",
        lambda r: f"{r['load_start']:.2f} / {r['load_end']:.2f}",
    )
    return "\n".join(lines) + "\n"


RESULTS_HEADER = """# Queue benchmark results

Appended by `bench/queue_bench.py` (`make bench`), newest last; how each number is
measured is in [README.md](README.md). The machine is shared: other test suites may run
beside the benchmark, so every run records the CPU other processes used during the
measured windows ("noise" rows) and the load average. Compare runs with little noise,
and prefer the CPU-per-prediction rows, which noise disturbs least. A **MISS** is a
target not met on that run.
"""


def record(text: str) -> None:
    if not RESULTS_MD.exists():
        RESULTS_MD.write_text(RESULTS_HEADER)
    with RESULTS_MD.open("a") as out:
        out.write("\n" + text)
