"""Crashes: kill -9 in the middle of work, and a model that kills its own worker.

On SQLite one process owns the queue, so at start every lease left behind belongs to
a dead process: the job goes back to pending (attempts < max) or fails ``worker_lost``.
On PostgreSQL other processes may share the queue, so a restarted server takes no
lease for lost at start: the reaper returns a dead server's jobs once their lease has
expired. The ``[postgres]`` variants therefore run with short leases and a quick reaper.
"""

from __future__ import annotations

import contextlib
import re
import signal
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from e2e_support import (
    DIAGNOSTIC,
    E5,
    Server,
    get,
    long_texts,
    submit,
    succeeded_lines,
    wait_all_terminal,
)

pytestmark = pytest.mark.e2e
REAPED = re.compile(r"reaped job (pred_\w+) -> (\w+)")


def reaped(stderr: str) -> dict[str, str]:
    return dict(REAPED.findall(stderr))


def wait_reaped(server: Server, expected: dict[str, str], timeout: float = 20) -> None:
    """Wait until this start of ``server`` has logged exactly the ``expected`` reaps
    (on SQLite they happen at start; on PostgreSQL once the dead leases expire)."""
    deadline = time.monotonic() + timeout
    while (found := reaped(server.stderr())) != expected:
        if time.monotonic() > deadline or not server.running:
            raise AssertionError(f"reaped {found}, expected {expected}:\n{server.tail()}")
        time.sleep(0.1)


@pytest.fixture
def lease_env(database: str) -> dict[str, str]:
    """Settings under which a dead server's leases are found lost soon (PostgreSQL)."""
    if database == "sqlite":
        return {}
    return {"GENYARD_LEASE_SECONDS": "3", "GENYARD_REAPER_INTERVAL": "0.3"}


def diagnostic_inputs() -> list[dict[str, Any]]:
    """30 jobs: echo (done at once), sleep 1-3 s and progress 2 s (running at the kill)."""
    inputs: list[dict[str, Any]] = []
    for i in range(30):
        payload = {"i": i, "text": f"job {i}", "nested": [i, {"k": "v"}]}
        if i % 3 == 0:
            inputs.append({"mode": "echo", "payload": payload})
        elif i % 3 == 1:
            inputs.append({"mode": "sleep", "seconds": 1 + (i % 7) / 3, "payload": payload})
        else:
            inputs.append({"mode": "progress", "seconds": 2, "steps": 4, "payload": payload})
    return inputs


def test_kill_9_mid_work_then_restart_finishes_every_job_once(
    make_server: Callable[..., Server], lease_env: dict[str, str]
) -> None:
    # One core for engines: e5 runs one call at a time, so e5 jobs queue up behind a
    # long one and some jobs are truly pending (not yet claimed) when the server dies.
    server = make_server(GENYARD_WORKER_CONCURRENCY="1", **lease_env).start()
    jobs: dict[str, dict[str, Any]] = {}
    with server.client(server.admin_key) as http:
        blocker = submit(http, {"text": long_texts(4)}, model=E5)
        jobs[blocker["id"]] = {"model": E5, "texts": 4}
        for i in range(3):
            job = submit(http, {"text": [f"queued text {i}", "둘"]}, model=E5)
            jobs[job["id"]] = {"model": E5, "texts": 2}
        for item in diagnostic_inputs():
            job = submit(http, item)
            jobs[job["id"]] = {"model": DIAGNOSTIC, "input": item}

        before = {job_id: get(http, job_id) for job_id in jobs}
    statuses = [j["status"] for j in before.values()]
    assert "processing" in statuses, statuses
    assert "pending" in statuses, statuses
    assert before[blocker["id"]]["status"] == "processing"
    pending_at_kill = {i for i, j in before.items() if j["status"] == "pending"}

    server.kill()
    # What the dead server left in the database: leases held, jobs mid-run.
    left_processing = {
        row[0] for row in server.db_rows("SELECT id FROM predictions WHERE status='processing'")
    }
    assert left_processing, "nothing was running when the server died"

    server.start()
    with server.client(server.admin_key) as http:
        final = wait_all_terminal(http, list(jobs), timeout=60)
        listed = http.get("/v1/predictions", params={"limit": 100}).json()["data"]
    assert len(listed) == len(jobs)  # no job lost, none duplicated

    back = reaped(server.stderr())
    assert set(back) == left_processing, (back, left_processing)
    assert set(back.values()) == {"pending"}

    attempts: dict[str, int] = {}
    for job_id, job in final.items():
        assert job["status"] == "succeeded", job
        lines = succeeded_lines(job)
        assert len(lines) == 1, job["logs"]  # completed exactly once
        attempts[job_id] = int(lines[0].rsplit(" ", 1)[1])
        spec = jobs[job_id]
        if spec["model"] == DIAGNOSTIC:
            assert job["output"] == spec["input"]["payload"]
        else:
            assert job["output"]["dimensions"] == 384
            assert len(job["output"]["embeddings"]) == spec["texts"]
            assert all(len(v) == 384 for v in job["output"]["embeddings"])

    # Exactly the jobs the dead server was running were started a second time.
    assert {i for i, n in attempts.items() if n == 2} == left_processing
    assert {i for i, n in attempts.items() if n == 1} == set(jobs) - left_processing
    for job_id in left_processing:
        if jobs[job_id]["model"] == DIAGNOSTIC:
            assert final[job_id]["logs"].count("attempt=2") == 1, final[job_id]["logs"]
    # Jobs still pending at the kill ran once, after the restart.
    for job_id in pending_at_kill - left_processing:
        assert attempts[job_id] == 1


def crash_and_wait(server: Server, http: httpx.Client) -> None:
    """Submit a crash job: the server SIGKILLs itself (the response may never come)."""
    with contextlib.suppress(httpx.TransportError):
        http.post(
            "/v1/predictions",
            json={"model": DIAGNOSTIC, "input": {"mode": "crash"}},
            headers={"Idempotency-Key": "the-crash"},
        )
    assert server.wait_exit(20) == -signal.SIGKILL


def test_crash_job_is_retried_then_failed_worker_lost(
    make_server: Callable[..., Server], lease_env: dict[str, str]
) -> None:
    server = make_server(GENYARD_MAX_ATTEMPTS="2", **lease_env).start()
    with server.client(server.admin_key) as http:
        before = [submit(http, {"mode": "echo", "payload": {"n": n}}, wait=10) for n in range(3)]
        before.append(submit(http, {"mode": "sleep", "seconds": 0.2, "payload": "s"}, wait=10))
        assert [j["status"] for j in before] == ["succeeded"] * 4
        crash_and_wait(server, http)
    first_start = server.starts

    # Restart: the job is retried (attempt 2 of 2) and takes the server down again.
    server.start(wait=False)
    assert server.wait_exit(30) == -signal.SIGKILL
    back = reaped(server.stderr())
    assert list(back.values()) == ["pending"], server.stderr()
    (crash_id,) = back
    assert server.starts == first_start + 1

    # Restart again: attempts are spent, so the job fails and the server stays up.
    server.start()
    wait_reaped(server, {crash_id: "failed"})
    with server.client(server.admin_key) as http:
        crashed = get(http, crash_id)
        assert crashed["status"] == "failed"
        assert crashed["input"]["mode"] == "crash"
        assert crashed["error"]["code"] == "worker_lost"
        assert "2 times" in crashed["error"]["message"]
        assert crashed["output"] is None
        assert succeeded_lines(crashed) == []
        # Submitting the same request again replays the failed job, not a new crash.
        replay = http.post(
            "/v1/predictions",
            json={"model": DIAGNOSTIC, "input": {"mode": "crash"}},
            headers={"Idempotency-Key": "the-crash"},
        )
        assert replay.status_code == 201
        assert replay.json()["id"] == crash_id
        assert replay.headers.get("idempotent-replayed") == "true"

        # The jobs finished before the crashes are untouched...
        for job in before:
            now = get(http, job["id"])
            assert now["status"] == "succeeded"
            assert now["output"] == job["output"]
            assert succeeded_lines(now) == ["succeeded on attempt 1"]
        # ...and the recovered server runs new work normally.
        after = [
            submit(http, {"mode": "echo", "payload": [1, 2, 3]}),
            submit(http, {"mode": "sleep", "seconds": 0.5, "payload": "late"}),
            submit(http, {"mode": "progress", "seconds": 0.5, "steps": 2, "payload": None}),
        ]
        done = wait_all_terminal(http, [j["id"] for j in after], timeout=30)
        assert [done[j["id"]]["status"] for j in after] == ["succeeded"] * 3
        assert [done[j["id"]]["output"] for j in after] == [[1, 2, 3], "late", None]
        assert http.get("/healthz").json()["status"] == "ok"
        total = http.get("/v1/predictions", params={"limit": 100}).json()["data"]
        assert len(total) == len(before) + 1 + len(after)
