"""What billing and rate limits cost on the hot path (issue 5): echo predictions per
second with both on versus both off, measured side by side in one run.

Two servers of one layout run at once, identical but for their settings: "off"
(``GENYARD_BILLING=off``, ``GENYARD_RATE_LIMITS=off``) and "on" (billing on, every
account granted a million credits; rate limits on, with tiers so large that nothing is
refused, so the counting is paid but no 429 skews the rate). ``wrk`` drives each in turn,
off/on/off/on..., over the same accounts count, and the rates are compared.

Usage::

    .venv/bin/python bench/billing_bench.py [--db sqlite|postgres] [--rounds 3] [--seconds 10]
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime as dt
import shutil
import signal
import statistics
import subprocess
import sys
from typing import Any

from bench_common import ECHO, RESULTS_MD, ROOT, on_signal, run_cleanups
from bench_load import run_wrk, wrk_script
from bench_measure import wait_drained
from bench_postgres import Postgres, find_pg_bin, start_postgres
from bench_report import machine_info, record, wrk_problems
from bench_servers import Layout, create_accounts, genyard_bin, server, smoke

TARGET_SLOWDOWN = 0.15  # at most 15 percent slower with billing and limits on
HUGE_TIERS = ";".join(f"{t}=100000000/1000000000/10000000000" for t in
                      ("free", "basic", "pro", "enterprise"))  # fmt: skip
OFF = {"GENYARD_BILLING": "off", "GENYARD_RATE_LIMITS": "off"}
TURN_ON = {
    "billing": {"GENYARD_BILLING": "on"},
    "limits": {"GENYARD_RATE_LIMITS": "on", "GENYARD_RATE_LIMIT_TIERS": HUGE_TIERS},
}


def grant(env: dict[str, str], cwd: Any, users: int) -> None:
    for i in range(users):
        proc = subprocess.run(
            [str(genyard_bin()), "credits", "grant", "--user", f"bench{i}", "--amount", "1000000"],
            env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"credits grant failed:\n{proc.stdout}{proc.stderr}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=3, help="off/on pairs (3)")
    parser.add_argument("--seconds", type=int, default=10, help="one wrk window (10)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument(
        "--on",
        default="billing,limits",
        help="what the 'on' server turns on: billing, limits or both (default)",
    )
    args = parser.parse_args(argv)
    configs = {"off": dict(OFF), "on": dict(OFF)}
    for part in args.on.split(","):
        configs["on"].update(TURN_ON[part.strip()])
    atexit.register(run_cleanups)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    if not shutil.which(args.wrk):
        print("bench: wrk is missing: `make bench` installs it", file=sys.stderr)
        return 2
    pg: Postgres | None = None
    if args.db == "postgres":
        pg_bin = find_pg_bin(None)
        if pg_bin is None:
            print("bench: no PostgreSQL binaries", file=sys.stderr)
            return 2
        pg = start_postgres(pg_bin, [])
    layout = Layout("SQLite" if pg is None else "PostgreSQL", "serve")
    info, when = machine_info(), dt.datetime.now(dt.UTC)
    rates: dict[str, list[float]] = {name: [] for name in configs}
    problems: list[str] = []
    with contextlib.ExitStack() as stack:
        running = {}
        for name, env in configs.items():
            srv = stack.enter_context(server(layout, pg, env))
            keys = create_accounts(srv.env, srv.workdir, args.users)
            if name == "on":
                grant(srv.env, srv.workdir, args.users)
            smoke(srv.base, keys[0], ECHO)
            script = wrk_script(srv.workdir, keys, ECHO)
            run_wrk(args.wrk, srv.base, script, 3, args.clients)  # warm-up
            wait_drained(srv.base)
            running[name] = (srv, script)
        for round_no in range(args.rounds):
            for name, (srv, script) in running.items():
                result = run_wrk(args.wrk, srv.base, script, args.seconds, args.clients)
                wait_drained(srv.base)
                rates[name].append(result["rate"])
                issue = wrk_problems(result)
                if set(result["codes"]) - {"201"} or result["not_done"]:
                    problems.append(f"{name} round {round_no + 1}: {issue}")
                print(
                    f"   round {round_no + 1} {name}: {result['rate']:.1f}/s  {issue}", flush=True
                )
    run_cleanups()
    off, on = statistics.mean(rates["off"]), statistics.mean(rates["on"])
    slowdown = 1 - on / off
    ok = slowdown <= TARGET_SLOWDOWN
    text = (
        f"## On ({args.on}) vs off, {layout.db} — {when:%Y-%m-%d %H:%M} UTC\n\n"
        f"Machine: {info['nproc']} cores ({info['cpu']}), {info['ram']}; "
        f"commit {info['commit']}; "
        f"Python {info['python']}. `bench/billing_bench.py --db {args.db} --rounds "
        f"{args.rounds} --seconds {args.seconds} --on {args.on}`: echo with `Prefer: wait=10`, "
        f"{args.clients} wrk connections over {args.users} accounts, windows alternating "
        "off/on.\n\n"
        "| config | rates (/s) | mean (/s) |\n|---|---|---|\n"
        + "".join(
            f"| {name} | {', '.join(f'{r:.0f}' for r in rates[name])} | "
            f"{statistics.mean(rates[name]):.0f} |\n"
            for name in configs
        )
        + f"\nOn is {slowdown * 100:.1f}% slower than off (target: at most "
        f"{TARGET_SLOWDOWN * 100:.0f}%): {'ok' if ok else '**MISS**'}.\n"
        + "".join(f"- problem: {p}\n" for p in problems)
    )
    print("\n" + text)
    if not args.no_record:
        record(text)
        print(f"appended to {RESULTS_MD.relative_to(ROOT)}")
    return 0 if ok and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
