"""The native predictions API on the real queue and workers (diagnostic model)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from genyard.queue.reaper import Reaper

from .support import DIAGNOSTIC, FAST, Api

WAIT = {"Prefer": "wait=10"}


def parse_iso(value: str) -> datetime:
    assert value.endswith("Z")
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_prefer_wait_returns_the_finished_job(api: Api) -> None:
    payload = {"hello": "world", "n": [1, 2, 3]}
    r = await api.client.post(
        "/v1/predictions",
        json={"model": DIAGNOSTIC, "input": {"mode": "echo", "payload": payload}},
        headers=WAIT,
    )
    assert r.status_code == 201
    assert r.headers["preference-applied"] == "wait=10"
    job = r.json()
    assert r.headers["location"] == f"http://127.0.0.1:8000/v1/predictions/{job['id']}"
    assert job["id"].startswith("pred_")
    assert job["status"] == "succeeded"
    assert job["output"] == payload
    assert job["error"] is None
    assert job["progress"] == 100
    assert job["usage"] == {"items": 1, "credits_held": 0.01, "credits_charged": 0.01}
    assert job["input"] == {"mode": "echo", "payload": payload, "seconds": 1, "steps": 5}
    assert job["logs"].splitlines() == ["diagnostic echo attempt=1", "succeeded on attempt 1"]
    assert "queue_position" not in job
    assert job["webhook_events"] == ["completed", "failed"]
    assert job["urls"]["get"].endswith(f"/v1/predictions/{job['id']}")
    assert job["urls"]["stream"].endswith(f"/v1/predictions/{job['id']}/stream")

    metrics = job["metrics"]
    assert set(metrics) == {"total_time", "queue_time", "run_time"}
    assert all(isinstance(v, float) and 0 <= v < 5 for v in metrics.values()), metrics
    assert abs(metrics["total_time"] - metrics["queue_time"] - metrics["run_time"]) < 0.001
    created, started, completed = (
        parse_iso(job[k]) for k in ("created_at", "started_at", "completed_at")
    )
    assert created <= started <= completed
    assert await api.get(job["id"]) == job


async def test_prefer_wait_gives_the_current_state_of_a_slow_job(api: Api) -> None:
    started = time.monotonic()
    r = await api.client.post(
        "/v1/predictions",
        json={"model": DIAGNOSTIC, "input": {"mode": "sleep", "seconds": 5}},
        headers={"Prefer": "wait=0.4"},
    )
    elapsed = time.monotonic() - started
    assert r.status_code == 201  # never a 504
    assert r.headers["preference-applied"] == "wait=0.4"
    job = r.json()
    assert job["status"] in ("pending", "processing")
    assert job["output"] is None and job["completed_at"] is None
    assert 0.35 <= elapsed < 2.5
    # it keeps running after the wait gave up; cancel it so the test ends fast
    assert (await api.client.delete(f"/v1/predictions/{job['id']}")).status_code == 200


async def test_a_failed_job_is_a_status_with_a_reason(api: Api) -> None:
    job = await api.predict(DIAGNOSTIC, {"mode": "fail", "message": "kaput"}, headers=WAIT)
    assert job["status"] == "failed"
    assert job["error"] == {"code": "provider_error", "message": "kaput"}
    assert job["output"] is None
    assert job["logs"].splitlines()[-1] == "failed on attempt 1"
    assert job["metrics"]["run_time"] is not None


async def test_a_run_past_the_model_timeout_fails_with_timeout(api: Api) -> None:
    started = time.monotonic()
    job = await api.predict(FAST, {"mode": "sleep", "seconds": 5}, headers=WAIT)
    assert time.monotonic() - started < 3
    assert job["status"] == "failed"
    assert job["error"]["code"] == "timeout"
    assert "0.5 s timeout" in job["error"]["message"]
    assert 0.45 <= job["metrics"]["run_time"] < 3


async def test_a_job_waiting_past_its_queue_timeout_fails_with_queue_timeout(
    queue_only_api: Api,
) -> None:
    api = queue_only_api  # no workers: nothing claims the jobs, they wait in the queue
    services = api.services
    late = await api.predict(FAST, {"mode": "echo"})  # queue_timeout = 1 s
    patient = await api.predict(DIAGNOSTIC, {"mode": "echo"})  # queue_timeout = 600 s
    reaper = Reaper(
        services.db,
        max_attempts=services.settings.max_attempts,
        interval=services.settings.reaper_interval,
        on_moved=services.on_moved,
    )
    reaper.start()
    try:
        job = await api.wait_until(late["id"], timeout=5)
    finally:
        await reaper.stop()
    assert job["status"] == "failed"
    assert job["error"] == {
        "code": "queue_timeout",
        "message": "the job waited in the queue too long",
    }
    assert job["started_at"] is None
    assert job["metrics"]["total_time"] >= 1.0
    assert (await api.get(patient["id"]))["status"] == "pending"


async def test_idempotency_key_with_the_same_body_gives_the_same_prediction(api: Api) -> None:
    body = {"model": DIAGNOSTIC, "input": {"mode": "echo", "payload": "once"}}
    first = await api.client.post("/v1/predictions", json=body, headers={"Idempotency-Key": "abc"})
    again = await api.client.post(
        "/v1/predictions", json=body, headers={"Idempotency-Key": "abc", **WAIT}
    )
    assert first.status_code == again.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["status"] == "succeeded"
    # another account may use the same key for its own prediction
    other = await api.new_user("other")
    r = await api.anon.post(
        "/v1/predictions", json=body, headers={**api.auth(other), "Idempotency-Key": "abc"}
    )
    assert r.status_code == 201 and r.json()["id"] != first.json()["id"]
    listed = (await api.client.get("/v1/predictions")).json()["data"]
    assert [j["id"] for j in listed] == [first.json()["id"]]


async def test_cancel_a_pending_job(queue_only_api: Api) -> None:
    api = queue_only_api
    job = await api.predict(DIAGNOSTIC, {"mode": "echo"})
    assert job["status"] == "pending"
    r = await api.client.delete(f"/v1/predictions/{job['id']}")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "canceled"
    assert body["error"] == {"code": "canceled", "message": "canceled by the user"}
    assert body["message"] == "Prediction canceled successfully"
    assert body["completed_at"] is not None and body["started_at"] is None
    assert "queue_position" not in body
    assert (await api.get(job["id"]))["status"] == "canceled"
    r = await api.client.delete(f"/v1/predictions/{job['id']}")
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"


async def test_cancel_a_processing_job_stops_it_and_it_stays_canceled(api: Api) -> None:
    job = await api.predict(DIAGNOSTIC, {"mode": "sleep", "seconds": 5})
    job = await api.wait_until(job["id"], lambda j: j["status"] == "processing", timeout=5)
    workers = api.services.workers
    assert workers is not None
    deadline = time.monotonic() + 3
    while job["id"] not in workers.running:  # claimed in the database, the run starting
        assert time.monotonic() < deadline, "the claimed job never started running"
        await asyncio.sleep(0.01)
    r = await api.client.delete(f"/v1/predictions/{job['id']}")
    assert r.status_code == 200
    assert r.json()["status"] == "canceled"
    assert r.json()["error"]["code"] == "canceled"
    # the run sees the cancel flag and stops; its late result must not overwrite the status
    deadline = time.monotonic() + 3
    while job["id"] in workers.running:
        assert time.monotonic() < deadline, "the canceled run kept going"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    final = await api.get(job["id"])
    assert final["status"] == "canceled"
    assert final["error"] == {"code": "canceled", "message": "canceled by the user"}
    assert "failed on attempt" not in final["logs"]
    assert final["output"] is None
    assert final["metrics"]["run_time"] < 2
    r = await api.client.delete(f"/v1/predictions/{job['id']}")
    assert r.status_code == 409


async def test_list_pages_newest_first_with_a_cursor(api: Api) -> None:
    ids = [(await api.predict(DIAGNOSTIC, {"mode": "echo", "payload": i}))["id"] for i in range(5)]
    seen: list[str] = []
    pages = []
    url = "/v1/predictions?limit=2"
    while True:
        body = (await api.client.get(url)).json()
        pages.append((len(body["data"]), body["has_more"]))
        assert all("logs" not in j for j in body["data"])
        seen += [j["id"] for j in body["data"]]
        if not body["has_more"]:
            assert body["next_cursor"] is None
            break
        url = f"/v1/predictions?limit=2&cursor={body['next_cursor']}"
    assert pages == [(2, True), (2, True), (1, False)]
    assert seen == list(reversed(ids))
    full = (await api.client.get("/v1/predictions")).json()
    assert [j["id"] for j in full["data"]] == list(reversed(ids))
    assert full["has_more"] is False


async def test_list_filters_by_status_and_model(api: Api) -> None:
    ok = [(await api.predict(DIAGNOSTIC, {"mode": "echo"}, headers=WAIT))["id"] for _ in range(2)]
    bad = (await api.predict(DIAGNOSTIC, {"mode": "fail"}, headers=WAIT))["id"]
    fast = (await api.predict(FAST, {"mode": "echo"}, headers=WAIT))["id"]

    async def ids(query: str) -> list[str]:
        r = await api.client.get(f"/v1/predictions?{query}")
        assert r.status_code == 200
        return [j["id"] for j in r.json()["data"]]

    assert await ids("status=failed") == [bad]
    assert await ids("status=succeeded") == [fast, *reversed(ok)]
    assert await ids(f"model={FAST}") == [fast]
    assert await ids(f"model={DIAGNOSTIC}&status=succeeded") == list(reversed(ok))
    assert await ids("status=pending") == []
    assert await ids("model=nobody/nothing") == []


async def test_pending_jobs_report_their_queue_position(queue_only_api: Api) -> None:
    api = queue_only_api
    jobs = [await api.predict(DIAGNOSTIC, {"mode": "echo"}) for _ in range(3)]
    assert [j["queue_position"] for j in jobs] == [1, 2, 3]
    assert [(await api.get(j["id"]))["queue_position"] for j in jobs] == [1, 2, 3]
    # the queue is per model, shared by every account
    other_model = await api.predict(FAST, {"mode": "echo"})
    assert other_model["queue_position"] == 1
    stranger = await api.new_user("stranger")
    theirs = await api.predict(DIAGNOSTIC, {"mode": "echo"}, key=stranger)
    assert theirs["queue_position"] == 4
    await api.client.delete(f"/v1/predictions/{jobs[0]['id']}")
    assert [(await api.get(j["id"]))["queue_position"] for j in jobs[1:]] == [1, 2]
    assert (await api.get(theirs["id"], key=stranger))["queue_position"] == 3


async def test_progress_and_logs_show_while_the_job_runs(api: Api) -> None:
    job = await api.predict(DIAGNOSTIC, {"mode": "progress", "seconds": 1.5, "steps": 5})
    seen_progress: set[int] = set()
    seen_logs = ""
    deadline = time.monotonic() + 10
    while job["status"] not in ("succeeded", "failed", "canceled"):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
        job = await api.get(job["id"])
        assert 0 <= job["progress"] <= 100
        if job["status"] == "processing":
            seen_progress.add(job["progress"])
            if "step" in job["logs"]:
                seen_logs = job["logs"]
    assert any(0 < p < 100 for p in seen_progress), seen_progress
    assert seen_logs.startswith("diagnostic progress attempt=1\nstep 1/5")
    assert job["status"] == "succeeded"
    assert job["progress"] == 100
    lines = job["logs"].splitlines()
    assert lines == [
        "diagnostic progress attempt=1",
        *(f"step {i}/5" for i in range(1, 6)),
        "succeeded on attempt 1",
    ]
    assert job["metrics"]["run_time"] >= 1.4


async def test_many_echo_jobs_all_finish_once(api: Api) -> None:
    jobs = await asyncio.gather(
        *(api.predict(DIAGNOSTIC, {"mode": "echo", "payload": i}) for i in range(40))
    )
    done = [await api.wait_until(j["id"]) for j in jobs]
    assert sorted(j["output"] for j in done) == list(range(40))
    assert {j["status"] for j in done} == {"succeeded"}
    assert all(j["logs"].count("succeeded on attempt 1") == 1 for j in done)
