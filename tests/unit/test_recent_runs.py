"""db/jobs_repo.recent_runs: the samples of a time estimate, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from genyard.db import jobs_repo
from genyard.db.accounts_repo import UserRow
from genyard.db.engine import Database, InlineConnection
from genyard.db.jobs_repo import dumps
from genyard.db.tables import predictions
from genyard.domain.estimates import Run
from genyard.domain.jobs import Job, JobStatus

from .test_lifecycle import MODEL, OTHER, add_user


async def add_run(
    db: Database,
    user: UserRow,
    job_id: str,
    input: dict[str, Any],
    created_at: float,
    *,
    seconds: float | None = 1.0,
    status: JobStatus = JobStatus.SUCCEEDED,
    model: str = MODEL,
) -> None:
    job = Job(job_id, user.account_id, user.id, model, input, JobStatus.PENDING, created_at)
    async with db.write() as conn:
        assert await jobs_repo.insert_job(
            conn,
            job,
            api_key_id=None,
            idempotency_key=None,
            request_hash=None,
            queue_deadline=None,
            max_pending=1000,
        )
        started = created_at + 5 if seconds is not None else None
        await conn.execute(
            sa.update(predictions)
            .where(predictions.c.id == job_id)
            .values(
                status=status.value,
                input=dumps(input),
                started_at=started,
                completed_at=started + seconds if started is not None and seconds else None,
            )
        )


async def test_latest_succeeded_runs_of_the_model_with_their_fields(migrated_db: Database) -> None:
    user = await add_user(migrated_db)
    big = "x" * 10_000
    await add_run(
        migrated_db, user, "p1", {"quality": "high", "count": 2, "text": big}, 1, seconds=4
    )
    await add_run(migrated_db, user, "p2", {"count": [1, "a"], "quality": None}, 2, seconds=2.5)
    await add_run(migrated_db, user, "p3", {"quality": {"a": 1.5}, "count": True}, 3, seconds=1)
    await add_run(migrated_db, user, "p4", {"quality": "low"}, 4, status=JobStatus.FAILED)
    await add_run(migrated_db, user, "p5", {"quality": "low"}, 5, model=OTHER)
    await add_run(migrated_db, user, "p6", {"quality": "low"}, 6, seconds=None)  # never started
    async with migrated_db.read() as conn:
        runs = await jobs_repo.recent_runs(conn, MODEL, ["quality", "count"], limit=10)
        assert runs == [
            Run(1.0, {"quality": {"a": 1.5}, "count": True}),
            Run(2.5, {"count": [1, "a"]}),  # null is left out, as absent
            Run(4.0, {"quality": "high", "count": 2}),
        ]
        assert await jobs_repo.recent_runs(conn, MODEL, [], limit=2) == [Run(1.0, {}), Run(2.5, {})]
        assert await jobs_repo.recent_runs(conn, "acme/none", ["quality"], limit=5) == []


@pytest.mark.sqlite_only(reason="SQLite's EXPLAIN QUERY PLAN; PostgreSQL plans by table size")
async def test_the_query_walks_the_queue_index_without_sorting(migrated_db: Database) -> None:
    query = jobs_repo.recent_runs_query(["quality"], sqlite=True)
    async with migrated_db.read() as conn:
        assert isinstance(conn, InlineConnection)
        compiled = query.compile(conn.sync_connection)
        params = compiled.construct_params({"model": MODEL, "limit": 20})
        args = tuple(params[name] for name in compiled.positiontup or ())
        plan = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", args)
        details = " | ".join(str(r[-1]) for r in plan)
    assert "USING INDEX ix_predictions_queue (status=? AND model=?)" in details, details
    assert "TEMP B-TREE" not in details, details
