"""The per-model running cap (catalog ``limits.max_running``), on SQLite and PostgreSQL:
jobs past the cap wait in the queue (never a 429) and start as slots free, woken by the
end of the job before them, not by a poll."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import sqlalchemy as sa

from catalog_files import write_capped_diagnostic
from genyard.db.tables import predictions

from .support import Api, ApiFactory

CAPPED = "genyard/diagnostic-one"


async def run_intervals(api: Api, ids: list[str]) -> list[tuple[float, float]]:
    """(started_at, completed_at) of each job, as recorded, in start order."""
    async with api.services.db.read() as conn:
        rows = await conn.execute(
            sa.select(predictions.c.started_at, predictions.c.completed_at)
            .where(predictions.c.id.in_(ids))
            .order_by(predictions.c.started_at)
        )
        return [(r.started_at, r.completed_at) for r in rows]


async def test_a_model_capped_at_one_runs_its_jobs_one_at_a_time(
    make_api: ApiFactory, catalog_dir: Path
) -> None:
    write_capped_diagnostic(catalog_dir, CAPPED, 1)
    # A poll interval far past the test's time: the queue moves only when rung.
    async with make_api(poll_interval=60, rate_limits=False) as api:
        model = (await api.client.get(f"/v1/models/{CAPPED}")).json()
        assert model["limits"]["max_running"] == 1

        answers = await asyncio.gather(
            *(
                api.client.post(
                    "/v1/predictions",
                    json={"model": CAPPED, "input": {"mode": "sleep", "seconds": 0.3}},
                )
                for i in range(3)
            )
        )
        assert [r.status_code for r in answers] == [201, 201, 201]  # queued, never a 429
        ids = [r.json()["id"] for r in answers]

        most_running = 0
        deadline = time.monotonic() + 15  # a poll would take 60 s
        while True:
            # One list query: a snapshot (GETs one by one could see A still running and
            # then B already started, two that never ran at once).
            listed = await api.client.get("/v1/predictions", params={"model": CAPPED})
            by_id = {j["id"]: j for j in listed.json()["data"]}
            jobs = [by_id[job_id] for job_id in ids]
            statuses = [j["status"] for j in jobs]
            most_running = max(most_running, statuses.count("processing"))
            if all(s in ("succeeded", "failed", "canceled") for s in statuses):
                break
            assert time.monotonic() < deadline, jobs
            await asyncio.sleep(0.02)
        assert statuses == ["succeeded"] * 3, jobs
        assert most_running == 1
        intervals = await run_intervals(api, ids)
        for (_, ended), (started, _) in itertools.pairwise(intervals):
            assert started >= ended, intervals  # the next began after the last ended


async def test_the_cap_leaves_other_models_alone(make_api: ApiFactory, catalog_dir: Path) -> None:
    """A capped model at its cap does not hold up an uncapped model of the same engine."""
    write_capped_diagnostic(catalog_dir, CAPPED, 1)
    async with make_api(rate_limits=False) as api:
        long = await api.predict(CAPPED, {"mode": "sleep", "seconds": 30})
        waiting = await api.predict(CAPPED, {"mode": "echo", "payload": "later"})
        await api.wait_until(long["id"], lambda j: j["status"] == "processing")
        free = await api.predict("genyard/diagnostic", {"mode": "echo", "payload": "now"})
        assert (await api.wait_until(free["id"]))["output"] == "now"
        assert (await api.get(waiting["id"]))["status"] == "pending"
        # canceling the running job frees the slot: the waiting one runs
        assert (await api.client.delete(f"/v1/predictions/{long['id']}")).status_code == 200
        done = await api.wait_until(waiting["id"])
        assert (done["status"], done["output"]) == ("succeeded", "later")
