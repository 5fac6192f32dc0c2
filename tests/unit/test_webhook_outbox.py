"""The webhook outbox: claim() and transition() write a delivery row per subscribed
event in the job's own transaction, and none when the move is refused; dispatchers
claim due rows and the delivery log records attempts (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from genyard.db import jobs_repo, webhooks_repo
from genyard.db.engine import Database
from genyard.db.tables import webhook_deliveries
from genyard.domain.jobs import Job, JobStatus
from genyard.domain.webhooks import DeliveryStatus
from genyard.errors import JobErrorCode

from .test_lifecycle import MODEL, add_user, claim, move

HOOK = "https://hooks.example.com/genyard"


async def add_hooked_job(
    db: Database, job_id: str, events: list[str], url: str | None = HOOK
) -> None:
    """A pending job of the user :func:`add_user` made (account ``acct_1``)."""
    job = Job(job_id, "acct_1", "user_1", MODEL, {"mode": "echo"}, JobStatus.PENDING, time.time())
    job.webhook_url, job.webhook_events = url, events
    async with db.write() as conn:
        assert await jobs_repo.insert_job(
            conn, job, api_key_id=None, idempotency_key=None, request_hash=None,
            queue_deadline=None, max_pending=1000,
        )  # fmt: skip


async def outbox(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(webhook_deliveries).order_by(webhook_deliveries.c.created_at)
        )
        return [dict(r._mapping) for r in rows]


async def test_events_are_written_with_the_move_and_filtered(migrated_db: Database) -> None:
    db = migrated_db
    await add_user(db)
    await add_hooked_job(db, "pred_1", ["start", "output", "completed", "failed"])
    await add_hooked_job(db, "pred_2", ["completed"])
    await add_hooked_job(db, "pred_3", ["start", "completed"], url=None)
    claimed = {c.id: c for c in await claim(db, 10)}
    assert [(r["prediction_id"], r["event"]) for r in await outbox(db)] == [("pred_1", "start")]

    moved = await move(
        db, "pred_1", JobStatus.SUCCEEDED, lease_token=claimed["pred_1"].token, output_json="1"
    )
    assert moved is not None and moved.webhooks == 2
    moved = await move(
        db, "pred_2", JobStatus.SUCCEEDED, lease_token=claimed["pred_2"].token, output_json="null"
    )
    assert moved is not None and moved.webhooks == 1
    moved = await move(db, "pred_3", JobStatus.SUCCEEDED, lease_token=claimed["pred_3"].token)
    assert moved is not None and moved.webhooks == 0
    rows = await outbox(db)
    assert [(r["prediction_id"], r["event"]) for r in rows] == [
        ("pred_1", "start"),
        ("pred_1", "output"),
        ("pred_1", "completed"),
        ("pred_2", "completed"),
    ]
    assert {r["url"] for r in rows} == {HOOK}
    assert {r["status"] for r in rows} == {"pending"}
    assert all(r["account_id"] == "acct_1" and r["next_attempt_at"] for r in rows)


async def test_a_fenced_move_writes_no_event(migrated_db: Database) -> None:
    db = migrated_db
    await add_user(db)
    await add_hooked_job(db, "pred_1", ["completed", "failed"])
    await claim(db, 1)
    assert await move(db, "pred_1", JobStatus.SUCCEEDED, lease_token="not-the-token") is None
    assert await outbox(db) == []
    moved = await move(
        db, "pred_1", JobStatus.CANCELED, error=(JobErrorCode.CANCELED, "canceled by the user")
    )
    assert moved is not None
    assert [r["event"] for r in await outbox(db)] == ["failed"]
    # handed back to the queue: no event
    assert await move(db, "pred_1", JobStatus.PENDING) is None
    assert len(await outbox(db)) == 1


async def test_due_rows_are_claimed_once_and_attempts_are_logged(migrated_db: Database) -> None:
    db = migrated_db
    await add_user(db)
    await add_hooked_job(db, "pred_1", ["failed"])
    await move(db, "pred_1", JobStatus.FAILED, error=(JobErrorCode.PROVIDER_ERROR, "x"))
    now = time.time() + 1
    async with db.write() as conn:
        [due] = await webhooks_repo.claim_due(conn, now, 10, now + 60, skip_locked=False)
    async with db.write() as conn:  # held: not due again before the hold ends
        assert await webhooks_repo.claim_due(conn, now + 30, 10, now + 90, skip_locked=False) == []
    attempt = webhooks_repo.Attempt(now, 12, 500, "answered HTTP 500")
    async with db.write() as conn:
        await webhooks_repo.record_attempt(
            conn, due.id, attempt, status=DeliveryStatus.PENDING, attempts=1,
            next_attempt_at=now + 2, body='{"id": "pred_1"}',
        )  # fmt: skip
    async with db.write() as conn:
        assert await webhooks_repo.claim_due(conn, now + 1, 10, now + 60, skip_locked=False) == []
        [again] = await webhooks_repo.claim_due(conn, now + 2, 10, now + 60, skip_locked=False)
    assert (again.id, again.attempts, again.body) == (due.id, 1, '{"id": "pred_1"}')
    async with db.read() as conn:
        [delivery] = await webhooks_repo.list_for_prediction(conn, "pred_1", "acct_1")
        assert await webhooks_repo.list_for_prediction(conn, "pred_1", "acct_other") == []
    assert delivery.status is DeliveryStatus.PENDING
    assert delivery.log == [attempt]
