"""The queue benchmark: throughput, queue latency and idle memory of a real genyard server.

Starts the server under test itself (``genyard serve`` on SQLite; on PostgreSQL both
``genyard serve`` and ``genyard api`` + one ``genyard worker``), creates a few accounts
with the CLI, drives ``POST /v1/predictions`` with ``Prefer: wait=10`` from ``wrk`` and
from a small open-loop asyncio client, reads the jobs' own ``metrics.queue_time`` back
through the API, prints a Markdown table and appends it to ``bench/RESULTS.md``.

Usage (see bench/README.md)::

    .venv/bin/python bench/queue_bench.py [--db sqlite|postgres|both] [--quick]

Everything it starts (servers, PostgreSQL, wrk) is stopped when it ends, on error too.

This file holds the command line and the order of a run; the modules beside it the
rest: bench_common (constants, clean-up), bench_servers and bench_postgres (what is
measured), bench_load (wrk, the open-loop client), bench_measure (/proc, queue_time),
bench_report (the Markdown table, RESULTS.md) and bench_profile (--profile).
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import bench_servers
from bench_common import (
    E5,
    ECHO,
    FULL,
    QUICK,
    RESULTS_MD,
    ROOT,
    Plan,
    on_signal,
    run_cleanups,
)
from bench_load import open_loop, run_wrk, sequential, wrk_script
from bench_measure import CpuWindow, fetch_queue_times, percentile, rss_mb, wait_drained
from bench_postgres import Postgres, find_pg_bin, start_postgres
from bench_profile import profile_echo
from bench_report import fmt_rss, machine_info, ms, record, report, wrk_problems
from bench_servers import Layout, create_accounts, server, smoke, snapshot

# --------------------------------------------------------------------------------------
# One configuration, in order
# --------------------------------------------------------------------------------------


def measure(
    layout: Layout, pg: Postgres | None, plan: Plan, args: argparse.Namespace
) -> dict[str, Any]:
    r: dict[str, Any] = {"layout": layout, "load_start": os.getloadavg()[0]}
    print(f"\n== {layout.label} ({plan.name})", flush=True)
    with server(layout, pg) as srv:
        # Idle RSS: after start-up and one /healthz (wait_healthy), before any model loads.
        time.sleep(2)
        r["idle_rss"] = {name: rss_mb(pid) for name, pid in srv.pids.items()}
        print(f"   idle RSS: {fmt_rss(r['idle_rss'])}", flush=True)
        keys = create_accounts(srv.env, srv.workdir, args.users)
        pg_root = pg.postmaster_pid if pg else None
        server_pids = list(srv.pids.values())
        smoke(srv.base, keys[0], ECHO)

        # Echo: peak throughput (closed loop, wrk), after a discarded warm-up.
        script = wrk_script(srv.workdir, keys, ECHO)
        run_wrk(args.wrk, srv.base, script, plan.warmup_s, args.clients)
        wait_drained(srv.base)
        stats0 = pg.db_stats(srv.dbname) if pg and srv.dbname else {}
        t0 = time.time()
        with CpuWindow(server_pids, pg_root) as cpu:
            echo = run_wrk(args.wrk, srv.base, script, plan.echo_s, args.clients)
        t1 = time.time()
        echo["cpu"] = cpu.result
        wait_drained(srv.base)
        if pg and srv.dbname and stats0:
            time.sleep(1.5)  # let the backends flush their counters
            stats1 = pg.db_stats(srv.dbname)
            echo["pg_stats"] = {k: stats1.get(k, 0) - v for k, v in stats0.items()}
        echo["queue"], echo["statuses"] = fetch_queue_times(srv.base, keys, ECHO["model"], t0, t1)
        r["echo"] = echo
        print(f"   echo: {echo['rate']:.1f}/s  {wrk_problems(echo) or 'no errors'}", flush=True)

        # Queue latency at one client: sequential requests.
        seq = sequential(srv.port, keys, ECHO, plan.sequential_n)
        wait_drained(srv.base)
        seq_q, _ = fetch_queue_times(srv.base, keys, ECHO["model"], seq.t0, seq.t1)
        r["seq"], r["seq_queue"] = seq, seq_q
        print(f"   1 client: queue p50 {ms(percentile(seq_q, 50))} ms", flush=True)

        # Queue latency at half the peak rate: open loop, fixed rate.
        rate = max(1.0, echo["rate"] / 2)
        with CpuWindow(server_pids, pg_root) as cpu:
            half = open_loop(srv.port, keys, ECHO, rate, plan.open_loop_s)
        wait_drained(srv.base)
        half_q, _ = fetch_queue_times(srv.base, keys, ECHO["model"], half.t0, half.t1)
        r["half"], r["half_queue"], r["half_rate"], r["half_cpu"] = half, half_q, rate, cpu.result
        print(f"   half rate {rate:.0f}/s: queue p50 {ms(percentile(half_q, 50))} ms", flush=True)

        # e5: peak throughput of the real model (the warm-up loads it).
        script = wrk_script(srv.workdir, keys, E5)
        run_wrk(args.wrk, srv.base, script, max(plan.warmup_s, 3), args.clients)
        wait_drained(srv.base)
        t0 = time.time()
        with CpuWindow(server_pids, pg_root) as cpu:
            e5 = run_wrk(args.wrk, srv.base, script, plan.e5_s, args.clients)
        t1 = time.time()
        e5["cpu"] = cpu.result
        wait_drained(srv.base)
        e5["queue"], e5["statuses"] = fetch_queue_times(srv.base, keys, E5["model"], t0, t1)
        r["e5"] = e5
        print(f"   e5: {e5['rate']:.1f}/s  {wrk_problems(e5) or 'no errors'}", flush=True)

        r["final_rss"] = {name: rss_mb(pid) for name, pid in srv.pids.items()}
        if args.profile:
            profile_echo(args, layout, srv, keys, plan)
    r["load_end"] = os.getloadavg()[0]
    return r


# --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--layout",
        choices=["serve", "split", "both"],
        default="both",
        help="PostgreSQL process layout: genyard serve, genyard api + "
        "genyard worker (split), or both (default)",
    )
    parser.add_argument("--quick", action="store_true", help="a few seconds per measurement")
    parser.add_argument("--clients", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--users", type=int, default=8, help="accounts to spread load over (8)")
    parser.add_argument(
        "--ref",
        help="benchmark src/ as committed at this git ref (e.g. HEAD) instead of the working tree",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="after the measurements, one more echo window with py-spy attached to the "
        "server process(es); flame graphs and collapsed stacks go to DIR",
    )
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    parser.add_argument(
        "--src",
        metavar="DIR",
        help="import the genyard package from DIR (a directory holding genyard/, e.g. a "
        "patched copy of src/) instead of the working tree",
    )
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk", help="wrk binary")
    parser.add_argument("--pg-bin", help="PostgreSQL bin directory (default: found)")
    parser.add_argument(
        "--pg-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra PostgreSQL setting, e.g. synchronous_commit=off",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL

    atexit.register(run_cleanups)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    if not shutil.which(args.wrk):
        print(
            "bench: wrk is missing: `make bench` installs it (apt-get install wrk)", file=sys.stderr
        )
        return 2
    wrk_version = (
        subprocess.run([args.wrk, "--version"], capture_output=True, text=True, check=False)
        .stdout.split(" [")[0]
        .strip()
    )

    when = dt.datetime.now(dt.UTC)
    if args.ref and args.src:
        parser.error("--ref and --src exclude each other")
    if args.ref:  # the servers and the CLI import this snapshot (bench_servers.base_env)
        bench_servers.SNAPSHOT_SRC, bench_servers.REF_COMMIT = snapshot(args.ref)
    if args.src:
        src = Path(args.src).resolve()
        if not (src / "genyard" / "__init__.py").exists():
            parser.error(f"--src {args.src}: no genyard/__init__.py there")
        bench_servers.SNAPSHOT_SRC, bench_servers.REF_COMMIT = src, f"--src {src}"
    layouts: list[Layout] = []
    if args.db in ("sqlite", "both"):
        layouts.append(Layout("SQLite", "serve"))
    if args.db in ("postgres", "both"):
        for lay in ("serve", "split"):
            if args.layout in (lay, "both"):
                layouts.append(Layout("PostgreSQL", "serve" if lay == "serve" else "api+worker"))

    info = machine_info()  # the commit as the run starts
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    pg: Postgres | None = None
    try:
        for layout in layouts:
            if layout.db == "PostgreSQL" and pg is None:
                pg_bin = find_pg_bin(args.pg_bin)
                if pg_bin is None:
                    failures.append("PostgreSQL skipped: no initdb/pg_ctl found (--pg-bin)")
                    continue
                pg = start_postgres(pg_bin, args.pg_setting)
            try:
                results.append(
                    measure(layout, pg if layout.db == "PostgreSQL" else None, plan, args)
                )
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                failures.append(f"{layout.label}: {exc}")
                print(f"bench: {layout.label} failed: {exc}", file=sys.stderr)
        text = report(results, plan, args, pg, wrk_version, when, info)
    except KeyboardInterrupt:
        print("bench: interrupted; stopping everything it started", file=sys.stderr)
        return 130
    finally:
        run_cleanups()
    if failures:
        text += "\n"
    for failure in failures:
        # A long message (a traceback): its first and last lines say what went wrong.
        tail = [ln.strip() for ln in failure.splitlines() if ln.strip()]
        short = " / ".join(tail) if len(tail) <= 3 else f"{tail[0]} ... {' / '.join(tail[-2:])}"
        text += f"- failed: {short}\n"
    print("\n" + text)
    if not args.no_record and (results or failures):
        record(text)
        print(f"appended to {RESULTS_MD.relative_to(ROOT)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
