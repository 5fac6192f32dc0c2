"""queue/lifecycle and queue/reaper against a real, migrated database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import sqlalchemy as sa

from genyard.db import accounts_repo, jobs_repo
from genyard.db.accounts_repo import UserRow
from genyard.db.engine import Database
from genyard.db.jobs_repo import dumps
from genyard.db.tables import job_leases, predictions
from genyard.domain.jobs import Job, JobStatus
from genyard.errors import JobErrorCode
from genyard.queue import lifecycle
from genyard.queue.reaper import Reaper

MODEL = "genyard/diagnostic"
OTHER = "acme/other"


async def add_user(db: Database) -> UserRow:
    user = UserRow("user_1", "ann", "acct_1", False, "free", time.time())
    async with db.write() as conn:
        await accounts_repo.insert_user(conn, user)
    return user


async def add_job(
    db: Database,
    user: UserRow,
    job_id: str,
    created_at: float,
    *,
    model: str = MODEL,
    queue_deadline: float | None = None,
) -> None:
    job = Job(
        job_id, user.account_id, user.id, model, {"mode": "echo"}, JobStatus.PENDING, created_at
    )
    async with db.write() as conn:
        assert await jobs_repo.insert_job(
            conn,
            job,
            api_key_id=None,
            idempotency_key=None,
            request_hash=None,
            queue_deadline=queue_deadline,
            max_pending=1000,
        )


async def row(db: Database, job_id: str) -> dict[str, Any]:
    async with db.read() as conn:
        found = (
            await conn.execute(sa.select(predictions).where(predictions.c.id == job_id))
        ).first()
    assert found is not None
    return dict(found._mapping)


async def leases(db: Database) -> dict[str, dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(sa.select(job_leases))
        return {r.prediction_id: dict(r._mapping) for r in rows}


async def claim(
    db: Database,
    limit: int,
    *,
    now: float | None = None,
    lease: float = 30.0,
    models: list[str] | None = None,
) -> list[lifecycle.ClaimedJob]:
    async with db.write() as conn:
        return await lifecycle.claim(
            conn,
            models or [MODEL],
            limit,
            worker_id="w-test",
            lease_seconds=lease,
            now=time.time() if now is None else now,
            skip_locked=False,
        )


async def move(db: Database, job_id: str, to: JobStatus, **kwargs: Any) -> lifecycle.Moved | None:
    async with db.write() as conn:
        return await lifecycle.transition(conn, job_id, to, now=time.time(), **kwargs)


async def test_claim_takes_the_oldest_first_and_leases_them(migrated_db: Database) -> None:
    db = migrated_db
    user = await add_user(db)
    for job_id, created in [("pred_c", 30.0), ("pred_a", 10.0), ("pred_b", 20.0), ("pred_d", 40.0)]:
        await add_job(db, user, job_id, created)
    await add_job(db, user, "pred_other", 1.0, model=OTHER)

    now = time.time()
    claimed = await claim(db, 2, now=now, lease=30)
    assert [c.id for c in claimed] == ["pred_a", "pred_b"]
    assert all(c.attempt == 1 and c.model == MODEL for c in claimed)
    assert claimed[0].token != claimed[1].token
    held = await leases(db)
    assert set(held) == {"pred_a", "pred_b"}
    for c in claimed:
        assert held[c.id]["token"] == c.token
        assert held[c.id]["worker_id"] == "w-test"
        assert held[c.id]["expires_at"] == now + 30
        r = await row(db, c.id)
        assert (r["status"], r["attempts"], r["started_at"]) == ("processing", 1, now)
    assert (await row(db, "pred_c"))["status"] == "pending"
    assert (await row(db, "pred_other"))["status"] == "pending"


async def test_a_second_claim_does_not_take_leased_jobs(migrated_db: Database) -> None:
    db = migrated_db
    user = await add_user(db)
    for i in range(3):
        await add_job(db, user, f"pred_{i}", float(i))
    first = await claim(db, 2)
    second = await claim(db, 10)
    assert [c.id for c in first] == ["pred_0", "pred_1"]
    assert [c.id for c in second] == ["pred_2"]
    assert await claim(db, 10) == []
    assert len(await leases(db)) == 3


async def test_claim_with_nothing_to_do(migrated_db: Database) -> None:
    db = migrated_db
    user = await add_user(db)
    await add_job(db, user, "pred_1", 1.0)
    assert await claim(db, 0) == []
    assert await claim(db, 5, models=[OTHER]) == []
    async with db.write() as conn:
        assert (
            await lifecycle.claim(
                conn, [], 5, worker_id="w", lease_seconds=1, now=1, skip_locked=False
            )
            == []
        )
    assert (await row(db, "pred_1"))["status"] == "pending"


async def claim_capped(
    db: Database, limit: int, caps: dict[str, int], models: list[str] | None = None
) -> list[lifecycle.ClaimedJob]:
    """A claim as workers make them: SKIP LOCKED (and the cap's lock) on PostgreSQL."""
    async with db.write() as conn:
        return await lifecycle.claim(
            conn,
            models or [MODEL, OTHER],
            limit,
            worker_id="w-test",
            lease_seconds=30,
            now=time.time(),
            skip_locked=not db.is_sqlite,
            caps=caps,
        )


async def test_a_capped_model_runs_at_most_its_cap_and_the_rest_wait(
    migrated_db: Database,
) -> None:
    db = migrated_db
    user = await add_user(db)
    for i in range(5):
        await add_job(db, user, f"pred_m{i}", float(i))
    await add_job(db, user, "pred_o0", 1.5, model=OTHER)
    await add_job(db, user, "pred_o1", 10.0, model=OTHER)

    first = await claim_capped(db, 10, {MODEL: 2})
    # oldest first across both models; the capped one stops at 2, the other is uncapped
    assert [c.id for c in first] == ["pred_m0", "pred_m1", "pred_o0", "pred_o1"]
    assert await claim_capped(db, 10, {MODEL: 2}) == []  # at the cap: the rest wait
    assert (await row(db, "pred_m2"))["status"] == "pending"
    done = next(c for c in first if c.id == "pred_m0")
    assert await move(db, done.id, JobStatus.SUCCEEDED, lease_token=done.token)
    # one slot freed: one more, the oldest waiting
    assert [c.id for c in await claim_capped(db, 10, {MODEL: 2})] == ["pred_m2"]
    assert await claim_capped(db, 10, {MODEL: 2}) == []
    # a job handed back to the queue frees its slot too
    back = next(c for c in first if c.id == "pred_m1")
    assert await move(db, back.id, JobStatus.PENDING, lease_token=back.token)
    assert [c.id for c in await claim_capped(db, 1, {MODEL: 2})] == ["pred_m1"]
    # a claim smaller than the free slots; then a cap the running jobs already exceed
    assert await claim_capped(db, 10, {MODEL: 1}) == []
    assert [c.id for c in await claim_capped(db, 1, {MODEL: 4})] == ["pred_m3"]
    # uncapped (no caps given), the model's last job is taken as always
    assert [c.id for c in await claim_capped(db, 10, {})] == ["pred_m4"]


async def test_a_capped_claim_starts_its_jobs_at_the_clocks_time(migrated_db: Database) -> None:
    db = migrated_db
    user = await add_user(db)
    await add_job(db, user, "pred_1", 1.0)
    async with db.write() as conn:
        [job] = await lifecycle.claim(
            conn, [MODEL], 5, worker_id="w", lease_seconds=30, now=100.0,
            skip_locked=not db.is_sqlite, caps={MODEL: 1}, clock=lambda: 200.0,
        )  # fmt: skip
    assert (await row(db, job.id))["started_at"] == 200.0
    assert (await leases(db))[job.id]["expires_at"] == 230.0


async def test_concurrent_claims_never_exceed_a_cap(migrated_db: Database) -> None:
    """Twelve claimers at once (PostgreSQL: twelve transactions, SKIP LOCKED): the
    advisory lock makes each count the others' claims, so only the cap's 3 start."""
    db = migrated_db
    user = await add_user(db)
    for i in range(30):
        await add_job(db, user, f"pred_{i:02}", float(i))

    claims = await asyncio.gather(*(claim_capped(db, 2, {MODEL: 3}, [MODEL]) for _ in range(12)))
    started = sorted(c.id for claimed in claims for c in claimed)
    assert started == ["pred_00", "pred_01", "pred_02"]
    async with db.read() as conn:
        running = await conn.execute(
            sa.select(sa.func.count()).where(predictions.c.status == "processing")
        )
        assert running.scalar_one() == 3


async def test_transition_with_the_lease_token_succeeds_and_drops_the_lease(
    migrated_db: Database,
) -> None:
    db = migrated_db
    user = await add_user(db)
    await add_job(db, user, "pred_1", 1.0)
    [job] = await claim(db, 1)
    moved = await move(
        db,
        "pred_1",
        JobStatus.SUCCEEDED,
        lease_token=job.token,
        output_json=dumps({"x": 1}),
        usage={"items": 1},
    )
    assert moved is not None
    assert (moved.job_id, moved.model, moved.status) == ("pred_1", MODEL, JobStatus.SUCCEEDED)
    assert moved.completed_at is not None and moved.started_at is not None
    r = await row(db, "pred_1")
    assert (r["status"], r["output"], r["usage"], r["progress"]) == (
        "succeeded",
        '{"x":1}',
        '{"items":1}',
        100,
    )
    assert await leases(db) == {}


async def test_a_wrong_lease_token_is_refused_and_writes_nothing(migrated_db: Database) -> None:
    db = migrated_db
    user = await add_user(db)
    await add_job(db, user, "pred_1", 1.0)
    [job] = await claim(db, 1)
    before = await row(db, "pred_1")
    moved = await move(
        db,
        "pred_1",
        JobStatus.FAILED,
        lease_token="not-the-token",
        error=(JobErrorCode.PROVIDER_ERROR, "boom"),
        output_json=dumps("late"),
    )
    assert moved is None
    assert await row(db, "pred_1") == before
    assert (await leases(db))["pred_1"]["token"] == job.token


async def test_a_stale_lease_token_cannot_write_after_a_takeover(migrated_db: Database) -> None:
    db = migrated_db
    user = await add_user(db)
    await add_job(db, user, "pred_1", 1.0)
    [first] = await claim(db, 1, now=time.time() - 100, lease=1)  # its lease has expired
    reaper = Reaper(db, max_attempts=3, interval=60, on_moved=lambda m: None)
    assert [m.status for m in await reaper.reap()] == [JobStatus.PENDING]
    [second] = await claim(db, 1)
    assert second.attempt == 2 and second.token != first.token

    assert (
        await move(
            db, "pred_1", JobStatus.SUCCEEDED, lease_token=first.token, output_json=dumps("old")
        )
        is None
    )
    r = await row(db, "pred_1")
    assert (r["status"], r["output"], r["attempts"]) == ("processing", None, 2)

    assert await move(
        db, "pred_1", JobStatus.SUCCEEDED, lease_token=second.token, output_json=dumps("new")
    )
    assert (await row(db, "pred_1"))["output"] == '"new"'


async def test_moves_the_state_machine_forbids_write_nothing(migrated_db: Database) -> None:
    db = migrated_db
    user = await add_user(db)
    await add_job(db, user, "pred_1", 1.0)
    assert await move(db, "pred_1", JobStatus.SUCCEEDED) is None  # pending -> succeeded
    assert await move(db, "pred_1", JobStatus.PENDING) is None  # pending -> pending
    assert (await row(db, "pred_1"))["status"] == "pending"
    moved = await move(db, "pred_1", JobStatus.CANCELED, error=(JobErrorCode.CANCELED, "by you"))
    assert moved is not None and moved.started_at is None
    for to in JobStatus:
        assert await move(db, "pred_1", to) is None  # terminal: nothing moves it
    r = await row(db, "pred_1")
    assert (r["status"], r["error_code"], r["error_message"]) == ("canceled", "canceled", "by you")
    assert await move(db, "pred_missing", JobStatus.CANCELED) is None


async def test_cancel_without_a_token_takes_a_running_job_and_its_lease(
    migrated_db: Database,
) -> None:
    db = migrated_db
    user = await add_user(db)
    await add_job(db, user, "pred_1", 1.0)
    [job] = await claim(db, 1)
    assert await move(db, "pred_1", JobStatus.CANCELED, error=(JobErrorCode.CANCELED, "x"))
    assert await leases(db) == {}
    # the worker's late result is refused by the fencing token
    assert (
        await move(db, "pred_1", JobStatus.SUCCEEDED, lease_token=job.token, output_json=dumps(1))
        is None
    )
    assert (await row(db, "pred_1"))["status"] == "canceled"


async def test_renew_leases_extends_held_ones_and_reports_lost_ones(migrated_db: Database) -> None:
    db = migrated_db
    user = await add_user(db)
    for i in range(3):
        await add_job(db, user, f"pred_{i}", float(i))
    claimed = await claim(db, 3)
    tokens = {c.id: c.token for c in claimed}
    assert await move(db, "pred_1", JobStatus.CANCELED, error=(JobErrorCode.CANCELED, "x"))
    async with db.write() as conn:
        lost = await lifecycle.renew_leases(conn, tokens, expires_at=9_999_999_999.0)
    assert lost == {"pred_1"}
    held = await leases(db)
    assert set(held) == {"pred_0", "pred_2"}
    assert all(lease["expires_at"] == 9_999_999_999.0 for lease in held.values())
    async with db.write() as conn:
        assert await lifecycle.renew_leases(conn, {}, expires_at=1.0) == set()


async def test_set_progress_needs_the_lease(migrated_db: Database) -> None:
    db = migrated_db
    user = await add_user(db)
    await add_job(db, user, "pred_1", 1.0)
    [job] = await claim(db, 1)
    async with db.write() as conn:
        await lifecycle.set_progress(conn, "pred_1", job.token, 40)
        await lifecycle.set_progress(conn, "pred_1", "stale", 90)
    assert (await row(db, "pred_1"))["progress"] == 40


async def test_reaper_returns_expired_leases_then_fails_with_worker_lost(
    migrated_db: Database,
) -> None:
    db = migrated_db
    user = await add_user(db)
    await add_job(db, user, "pred_1", 1.0)
    await add_job(db, user, "pred_live", 2.0)
    seen: list[lifecycle.Moved] = []
    reaper = Reaper(db, max_attempts=2, interval=60, on_moved=seen.append)

    [lost] = await claim(db, 1, now=time.time() - 100, lease=1)
    [live] = await claim(db, 1)  # a healthy lease, 30 s left
    assert (lost.id, live.id) == ("pred_1", "pred_live")
    moved = await reaper.reap()
    assert [(m.job_id, m.status) for m in moved] == [("pred_1", JobStatus.PENDING)]
    assert seen == moved
    r = await row(db, "pred_1")
    assert (r["status"], r["attempts"], r["started_at"], r["progress"]) == ("pending", 1, None, 0)
    assert set(await leases(db)) == {"pred_live"}

    [again] = await claim(db, 1, now=time.time() - 100, lease=1)
    assert (again.id, again.attempt) == ("pred_1", 2)
    moved = await reaper.reap()
    assert [(m.job_id, m.status) for m in moved] == [("pred_1", JobStatus.FAILED)]
    r = await row(db, "pred_1")
    assert (r["status"], r["error_code"]) == ("failed", "worker_lost")
    assert "lost 2 times" in r["error_message"]
    assert r["completed_at"] is not None
    assert set(await leases(db)) == {"pred_live"}
    assert (await row(db, "pred_live"))["status"] == "processing"
    assert await reaper.reap() == []


async def test_reaper_with_infinite_cutoff_returns_every_lease(migrated_db: Database) -> None:
    db = migrated_db
    user = await add_user(db)
    await add_job(db, user, "pred_1", 1.0)
    await claim(db, 1)
    reaper = Reaper(db, max_attempts=3, interval=60, on_moved=lambda m: None)
    assert await reaper.reap() == []  # the lease is fresh
    moved = await reaper.reap(expired_before=float("inf"))
    assert [m.status for m in moved] == [JobStatus.PENDING]


async def test_reaper_fails_pending_jobs_past_their_queue_deadline(migrated_db: Database) -> None:
    db = migrated_db
    user = await add_user(db)
    now = time.time()
    await add_job(db, user, "pred_running", 1.0, queue_deadline=now - 1)
    await add_job(db, user, "pred_late", 2.0, queue_deadline=now - 1)
    await add_job(db, user, "pred_ok", 3.0, queue_deadline=now + 3600)
    [running] = await claim(db, 1)  # the oldest: a deadline only applies while pending
    assert running.id == "pred_running"
    seen: list[lifecycle.Moved] = []
    moved = await Reaper(db, max_attempts=3, interval=60, on_moved=seen.append).reap()
    assert [(m.job_id, m.status) for m in moved] == [("pred_late", JobStatus.FAILED)]
    assert seen == moved
    r = await row(db, "pred_late")
    assert (r["status"], r["error_code"], r["started_at"]) == ("failed", "queue_timeout", None)
    assert (await row(db, "pred_ok"))["status"] == "pending"
    assert (await row(db, "pred_running"))["status"] == "processing"


async def test_queue_position_counts_older_pending_jobs_of_the_model(migrated_db: Database) -> None:
    db = migrated_db
    user = await add_user(db)
    for i in range(4):
        await add_job(db, user, f"pred_{i}", float(i + 1))
    await add_job(db, user, "pred_x", 0.5, model=OTHER)
    await claim(db, 1)  # pred_0 is processing
    async with db.read() as conn:
        positions = {}
        for i in (1, 2, 3):
            job = await jobs_repo.get_job(conn, f"pred_{i}")
            assert job is not None
            positions[job.id] = await jobs_repo.queue_position(conn, job)
    assert positions == {"pred_1": 1, "pred_2": 2, "pred_3": 3}


async def test_insert_refuses_a_job_over_the_accounts_pending_cap(migrated_db: Database) -> None:
    db = migrated_db
    user = await add_user(db)
    for i in range(2):
        await add_job(db, user, f"pred_{i}", float(i))

    async def insert(job_id: str, cap: int) -> bool:
        job = Job(job_id, user.account_id, user.id, MODEL, {}, JobStatus.PENDING, 9.0)
        async with db.write() as conn:
            return await jobs_repo.insert_job(
                conn, job, api_key_id=None, idempotency_key=None, request_hash=None,
                queue_deadline=None, max_pending=cap,
            )  # fmt: skip

    assert await insert("pred_over", 2) is False
    assert await insert("pred_under", 3) is True
    async with db.read() as conn:
        ids = {r.id for r in await conn.execute(sa.select(predictions.c.id))}
    assert ids == {"pred_0", "pred_1", "pred_under"}
