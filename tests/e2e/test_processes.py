"""Scale-out on PostgreSQL: `genyard api` and `genyard worker` as separate processes.

Real processes on a real PostgreSQL 15: two workers share 500 jobs and run each once;
a worker killed mid-job loses its lease and another runs the job; a frozen worker that
wakes after its job was taken over cannot write (the fencing token); an API killed
and restarted loses nothing. With SQLite the split commands refuse to start.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e_support import E5, Cluster, get, submit, succeeded_lines, wait_all_terminal, wait_status
from standardwebhooks import Webhook

from catalog_files import write_capped_diagnostic
from receivers import ThreadedReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
CAPPED = "genyard/diagnostic-one"


def test_two_workers_run_each_of_500_jobs_exactly_once(cluster: Cluster) -> None:
    cluster.start_api()
    cluster.start_worker("w1")
    cluster.start_worker("w2")
    with cluster.client() as http:
        ids = [submit(http, {"mode": "echo", "payload": i})["id"] for i in range(500)]
        done = wait_all_terminal(http, ids, timeout=120)
    for i, job_id in enumerate(ids):
        job = done[job_id]
        assert job["status"] == "succeeded", job
        assert job["output"] == i
        assert succeeded_lines(job) == ["succeeded on attempt 1"], job["logs"]
    one, two = cluster.claimed_by("w1"), cluster.claimed_by("w2")
    assert sorted(one + two) == sorted(ids)  # every job claimed, none by both
    assert one and two, (len(one), len(two))  # both workers took part
    # Each job was started exactly once: the claim counts every start.
    assert {a for (a,) in cluster_rows(cluster, "SELECT DISTINCT attempts FROM predictions")} == {1}


def cluster_rows(cluster: Cluster, sql: str) -> list[tuple[object, ...]]:
    import asyncio

    import asyncpg

    url = cluster.env["GENYARD_DATABASE_URL"].replace("postgresql+asyncpg", "postgresql")

    async def fetch() -> list[tuple[object, ...]]:
        conn = await asyncpg.connect(url)
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(fetch())


def test_a_worker_killed_mid_job_loses_it_to_another(cluster: Cluster) -> None:
    cluster.start_api()
    cluster.start_worker("doomed")
    with cluster.client() as http:
        job = submit(http, {"mode": "sleep", "seconds": 2, "payload": "done"})
        wait_status(http, job["id"], "processing")
        cluster.signal("doomed", signal.SIGKILL)
        cluster.start_worker("heir")
        final = wait_status(http, job["id"], "succeeded", "failed", timeout=30)
    assert final["status"] == "succeeded", final
    assert final["output"] == "done"
    assert succeeded_lines(final) == ["succeeded on attempt 2"], final["logs"]
    assert cluster.claimed_by("heir") == [job["id"]]


def test_a_stale_worker_cannot_write_after_its_job_was_taken_over(cluster: Cluster) -> None:
    cluster.start_api()
    cluster.start_worker("stale")
    with cluster.client() as http:
        job = submit(http, {"mode": "sleep", "seconds": 1.5, "payload": "fresh"})
        wait_status(http, job["id"], "processing")
        cluster.signal("stale", signal.SIGSTOP)  # frozen: no heartbeats, run pending
        cluster.start_worker("fresh")
        final = wait_status(http, job["id"], "succeeded", "failed", timeout=30)
        assert final["status"] == "succeeded", final
        cluster.signal("stale", signal.SIGCONT)  # it wakes and tries to finish its run
        deadline = time.monotonic() + 15
        while "the lease was taken over" not in cluster.log("stale"):
            assert time.monotonic() < deadline, cluster.log("stale")
            time.sleep(0.1)
        after = get(http, job["id"])
    assert after["status"] == "succeeded"
    assert after["completed_at"] == final["completed_at"]  # the late write was refused
    assert succeeded_lines(after) == ["succeeded on attempt 2"], after["logs"]
    assert "failed on attempt 1" not in after["logs"]


def test_an_api_restart_loses_nothing(cluster: Cluster) -> None:
    cluster.start_api()
    cluster.start_worker("w")
    with cluster.client() as http:
        ids = [
            submit(http, {"mode": "sleep", "seconds": 0.05 * (i % 5), "payload": i})["id"]
            for i in range(40)
        ]
    cluster.signal("api", signal.SIGKILL)
    time.sleep(0.5)  # the worker goes on without an API
    cluster.start_api()
    with cluster.client() as http:
        done = wait_all_terminal(http, ids, timeout=60)
        later = submit(http, {"mode": "echo", "payload": "after"}, wait=10)
    assert [done[i]["status"] for i in ids] == ["succeeded"] * len(ids)
    assert [done[i]["output"] for i in ids] == list(range(40))
    assert all(succeeded_lines(done[i]) == ["succeeded on attempt 1"] for i in ids)
    assert later["status"] == "succeeded" and later["output"] == "after"


def test_workers_serve_only_the_models_they_are_told_to(cluster: Cluster) -> None:
    cluster.start_api()
    cluster.start_worker("embedder", "--types", "embedding")
    with cluster.client() as http:
        echo = submit(http, {"mode": "echo", "payload": "waits"})
        vector = submit(http, {"text": "안녕하세요"}, model=E5, wait=30)
        assert vector["status"] == "succeeded", vector
        assert len(vector["output"]["embeddings"][0]) == 384
        time.sleep(1.0)  # several poll intervals: nobody here serves the diagnostic model
        assert get(http, echo["id"])["status"] == "pending"
        cluster.start_worker("diagnostic", "--models", "genyard/diagnostic")
        done = wait_status(http, echo["id"], "succeeded", "failed", timeout=30)
    assert done["status"] == "succeeded" and done["output"] == "waits"
    assert cluster.claimed_by("embedder") == [vector["id"]]
    assert cluster.claimed_by("diagnostic") == [echo["id"]]


def test_a_webhook_queued_by_the_api_is_delivered_by_a_worker(cluster: Cluster) -> None:
    """The API process cancels a pending job; its outbox row is sent by a worker's
    dispatcher (the API runs none), signed with the same derived secret."""
    cluster.env["GENYARD_OUTBOUND_ALLOWLIST"] = "127.0.0.1/32"
    cluster.start_api()
    cluster.start_worker("embedder", "--types", "embedding")  # never runs diagnostic jobs
    threaded = ThreadedReceiver()
    with threaded as receiver, cluster.client() as http:
        response = http.post(
            "/v1/predictions",
            json={"model": "genyard/diagnostic", "input": {"mode": "echo"},
                  "webhook": receiver.url()},
        )  # fmt: skip
        assert response.status_code == 201, response.text
        job_id = response.json()["id"]
        assert http.delete(f"/v1/predictions/{job_id}").status_code == 200
        [request] = threaded.wait_for(1, timeout=15)
        secret = http.get("/v1/webhooks/secret").json()["key"]
    body = Webhook(secret).verify(request.body, request.headers)
    assert body["id"] == job_id and body["status"] == "canceled"
    # the worker's dispatcher sent it (its log line follows the recorded attempt)
    deadline = time.monotonic() + 10
    while f"webhook {request.headers['webhook-id']}" not in cluster.log("embedder"):
        assert time.monotonic() < deadline, cluster.log("embedder")
        time.sleep(0.05)


def test_a_models_running_cap_holds_across_worker_processes(cluster: Cluster) -> None:
    """Two workers serve a model capped at one running job: its jobs run one after
    the other and all of them succeed. Both workers are rung at every submit and
    every end, so each claim races the other process's (which one wins varies: runs
    here split 5/3, 6/2 and 0/8)."""
    cluster.env["GENYARD_CATALOG_DIR"] = str(
        write_capped_diagnostic(cluster.root / "catalog", CAPPED, 1)
    )
    cluster.start_api()
    cluster.start_worker("w1", "--models", CAPPED)
    cluster.start_worker("w2", "--models", CAPPED)
    with cluster.client() as http:
        ids = [
            submit(http, {"mode": "sleep", "seconds": 0.2, "payload": i}, model=CAPPED)["id"]
            for i in range(8)
        ]
        done = wait_all_terminal(http, ids, timeout=60)
    assert [done[i]["status"] for i in ids] == ["succeeded"] * len(ids)
    rows = cluster_rows(
        cluster,
        "SELECT started_at, completed_at FROM predictions WHERE model = "
        f"'{CAPPED}' ORDER BY started_at",
    )
    for (_, ended), (started, _) in itertools.pairwise(rows):
        assert started >= ended, rows  # never two running at once
    one, two = cluster.claimed_by("w1"), cluster.claimed_by("w2")
    assert sorted(one + two) == sorted(ids), (one, two)


@pytest.mark.parametrize(("command", "args"), [("api", ()), ("worker", ("--types", "embedding"))])
def test_the_split_commands_refuse_sqlite(tmp_path: Path, command: str, args: tuple[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENYARD_")}
    env["GENYARD_DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run(
        [sys.executable, "-m", "genyard", command, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    message = " ".join(result.stderr.split())  # the console wraps long lines
    assert "needs PostgreSQL" in message
    assert "run `genyard serve`" in message
