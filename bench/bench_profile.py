"""``--profile``: one more echo window with py-spy sampling the server process(es), and
a summary of the collapsed stacks it writes."""

from __future__ import annotations

import argparse
import re
import subprocess
import time
from pathlib import Path

from bench_common import ECHO, Plan
from bench_load import run_wrk, wrk_script
from bench_measure import wait_drained
from bench_servers import Layout, Running


def profile_echo(
    args: argparse.Namespace, layout: Layout, srv: Running, keys: list[str], plan: Plan
) -> None:
    """An extra echo window under wrk with py-spy sampling every server process; its numbers
    are not reported (sampling slows the server). Writes collapsed stacks per process to
    --profile DIR (input for flamegraph.pl, inferno or speedscope) and prints the top
    functions."""
    out = Path(args.profile)
    out.mkdir(parents=True, exist_ok=True)
    tag = f"{layout.db.lower()}-{layout.layout.replace('+', '-')}"
    script = wrk_script(srv.workdir, keys, ECHO)
    seconds = plan.echo_s
    spies = []
    for name, pid in srv.pids.items():
        path = out / f"{tag}-{name}.txt"
        argv = [
            args.py_spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(seconds + 1),
            "--rate",
            "200",
            "--gil",
            "--format",
            "raw",
            "--output",
            str(path),
        ]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        spies.append((name, path, proc))
    time.sleep(0.5)
    res = run_wrk(args.wrk, srv.base, script, seconds, args.clients)
    for _, _, proc in spies:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    wait_drained(srv.base)
    print(f"   profile ({res['rate']:.1f}/s while sampled): {out}/{tag}-*.txt", flush=True)
    for name, path, _ in spies:
        if path.exists():
            print(top_functions(path, f"{tag} {name}"), flush=True)


def top_functions(path: Path, title: str, limit: int = 25) -> str:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    by_package: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        frames = [
            re.sub(r"\(/[^)]*?/(site-packages|src|lib/python3[.0-9]*)/", "(", f) for f in frames
        ]
        own[frames[-1]] = own.get(frames[-1], 0) + count
        package = re.sub(r"^.*\(([^/)]+)[/)].*$", r"\1", frames[-1]).removesuffix(".py")
        by_package[package] = by_package.get(package, 0) + count
        for frame in set(frames):
            incl[frame] = incl.get(frame, 0) + count
    if not total:
        return f"   {title}: no samples"
    lines = [f"   {title}: {total} samples holding the GIL", "   self %   package"]
    for package, n in sorted(by_package.items(), key=lambda kv: -kv[1])[:12]:
        lines.append(f"   {100 * n / total:6.1f}   {package}")
    lines.append("   self %   function")
    for frame, n in sorted(own.items(), key=lambda kv: -kv[1])[:limit]:
        lines.append(f"   {100 * n / total:6.1f}   {frame}")
    lines.append("   incl %   genyard function (its own time and what it calls)")
    ours = {f: n for f, n in incl.items() if "(genyard/" in f and "cli.py" not in f}
    for frame, n in sorted(ours.items(), key=lambda kv: -kv[1])[:limit]:
        lines.append(f"   {100 * n / total:6.1f}   {frame}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Report
