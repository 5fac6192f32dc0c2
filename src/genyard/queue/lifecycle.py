"""Every job state change: ``transition()`` (one job) and ``claim()`` (pending ->
processing for a batch of jobs, the one transition a worker starts).

Both take an open write transaction. ``transition`` checks the lease's fencing token
(by deleting the lease it names) and the source status, so a worker whose lease was
taken over (reaped, canceled, timed out) can no longer write. Entering a terminal
status or going back to pending drops the lease. Credit holds are settled and webhook
outbox rows written here, in the same transaction. ``claim`` also keeps the per-model
running caps (catalog ``limits.max_running``): jobs past a cap stay pending.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from genyard.db import billing_repo, webhooks_repo
from genyard.db.engine import DbConnection
from genyard.db.jobs_repo import dumps
from genyard.db.tables import job_leases, predictions
from genyard.domain.jobs import JobStatus, sources_of
from genyard.domain.webhooks import events_for, subscribed
from genyard.errors import JobErrorCode


@dataclass(frozen=True, slots=True)
class Moved:
    """What a successful transition changed."""

    job_id: str
    model: str
    status: JobStatus
    started_at: float | None
    completed_at: float | None
    #: Webhook deliveries the move queued (the dispatcher's doorbell).
    webhooks: int = 0


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    id: str
    model: str
    input: str
    attempt: int
    token: str
    account_id: str
    is_public: bool
    output_folder: str | None
    webhook_url: str | None
    webhook_events: str


# The statements of transition(), built once (their cache keys too): they run for
# every job. A terminal move writes all its columns (NULL where nothing was given,
# which is what a job that never ended holds).
_DROP_LEASE = job_leases.delete().where(job_leases.c.prediction_id == sa.bindparam("job_id"))
_DROP_HELD_LEASE = _DROP_LEASE.where(job_leases.c.token == sa.bindparam("token")).returning(
    job_leases.c.prediction_id
)
_DROP_EXPIRED_LEASE = _DROP_HELD_LEASE.where(job_leases.c.expires_at < sa.bindparam("cutoff"))


def _move_statement(to: JobStatus) -> sa.Update:
    values: dict[str, Any] = {"status": to.value}
    if to is JobStatus.PENDING:
        values.update(started_at=None, progress=0)
    else:
        values.update(
            {
                name: sa.bindparam(name)
                for name in ("completed_at", "output", "usage", "error_code", "error_message")
            }
        )
        if to is JobStatus.SUCCEEDED:
            values["progress"] = 100
        # What the job is charged: its price, never more than it held (the hold itself
        # is settled by billing_repo.settle_holds in the same transaction).
        charge = sa.bindparam("charge", type_=sa.BigInteger)
        held = predictions.c.credits_held
        values["credits_charged"] = sa.case(
            (held.is_(None), None), (held < charge, held), else_=charge
        )
    return (
        predictions.update()
        .where(
            predictions.c.id == sa.bindparam("job_id"),
            predictions.c.status.in_([s.value for s in sources_of(to)]),
        )
        .values(values)
        .returning(
            predictions.c.model,
            predictions.c.started_at,
            predictions.c.completed_at,
            predictions.c.account_id,
            predictions.c.webhook_url,
            predictions.c.webhook_events,
        )
    )


_CLAIM_COLUMNS = [
    predictions.c[name]
    for name in (
        "id", "model", "input", "attempts", "account_id", "is_public", "output_folder",
        "webhook_url", "webhook_events", "created_at",
    )
]  # fmt: skip

_MOVES = {to: _move_statement(to) for to in JobStatus if to is not JobStatus.PROCESSING}


async def transition(
    conn: DbConnection,
    job_id: str,
    to: JobStatus,
    *,
    now: float,
    lease_token: str | None = None,
    lease_expired_before: float | None = None,
    output_json: str | None = None,
    error: tuple[JobErrorCode, str] | None = None,
    usage: dict[str, Any] | None = None,
    charge: int = 0,
    settle: bool = True,
) -> Moved | None:
    """Move one job to ``to``; None when the move is not allowed.

    ``lease_token``: the caller must still hold the job's lease with this token.
    ``lease_expired_before``: the lease must also have expired before that time
    (the reaper, so that a heartbeat that just renewed it wins).
    ``charge``: micro-credits a successful job costs (capped at what it held); a job
    that ends otherwise is charged nothing. ``settle=False``: the caller settles the
    hold itself, in this transaction (``billing_repo.settle_holds``, for a batch).

    The lease row is deleted *first*, then the job row updated: every writer takes the
    two locks in that order (so none deadlock), and on PostgreSQL a DELETE that waited
    for another transaction re-checks the lease row as it is now, where a subquery in
    the UPDATE would still see the lease of its older snapshot.
    """
    if to is JobStatus.PROCESSING:
        return None  # jobs start only through claim(), which leases them
    if lease_token is None:
        await conn.execute(_DROP_LEASE, {"job_id": job_id})  # an authority move
    else:
        fence = {"job_id": job_id, "token": lease_token}
        if lease_expired_before is None:
            held = await conn.execute(_DROP_HELD_LEASE, fence)
        else:
            held = await conn.execute(
                _DROP_EXPIRED_LEASE, {**fence, "cutoff": lease_expired_before}
            )
        if held.first() is None:
            return None  # fenced: the lease was taken over, renewed or dropped

    params: dict[str, Any] = {"job_id": job_id}
    if to is not JobStatus.PENDING:
        params.update(
            completed_at=now,
            output=output_json,
            usage=None if usage is None else dumps(usage),
            error_code=error[0].value if error else None,
            error_message=error[1] if error else None,
            charge=charge if to is JobStatus.SUCCEEDED else 0,
        )
    row = (await conn.execute(_MOVES[to], params)).first()
    if row is None:
        return None
    if to.is_terminal() and settle:
        await billing_repo.settle_holds(conn, {job_id: params["charge"]}, now)
    queued = 0
    if row.webhook_url:
        has_output = output_json is not None and output_json != "null"
        events = subscribed(events_for(to, has_output), row.webhook_events)
        await webhooks_repo.enqueue(
            conn,
            [webhooks_repo.NewDelivery(job_id, row.account_id, e, row.webhook_url) for e in events],
            now,
        )
        queued = len(events)
    return Moved(job_id, row.model, to, row.started_at, row.completed_at, queued)


async def claim(
    conn: DbConnection,
    models: Sequence[str],
    limit: int,
    *,
    worker_id: str,
    lease_seconds: float,
    now: float,
    skip_locked: bool,
    caps: Mapping[str, int] | None = None,
    clock: Callable[[], float] | None = None,
) -> list[ClaimedJob]:
    """Take up to ``limit`` of the oldest pending jobs of ``models`` and lease them.

    ``skip_locked``: other transactions claim at the same time (PostgreSQL); rows they
    hold are skipped. ``caps``: the most jobs of a model that may be ``processing`` at
    once, across every worker (catalog ``limits.max_running``; models not named are
    uncapped): a capped model gets at most its cap minus the jobs of it running now,
    and the rest stay pending. Under ``skip_locked`` the claims of a capped model are
    serialised by a transaction-scoped advisory lock taken before counting (SQLite's
    write transactions are serial already). ``clock``: read after counting, for the
    start time of capped claims, so that a job never starts, on record, before the end
    that freed its slot.
    """
    if limit <= 0 or not models:
        return []
    capped = sorted(m for m in models if caps and m in caps)
    if not capped:  # the hot path: one statement, no lock, no count
        rows = await _pending(conn, models, limit, skip_locked)
    else:
        assert caps is not None
        rows = await _pending_under_caps(conn, models, capped, caps, limit, skip_locked)
        if clock is not None and rows:
            now = max(now, clock())
    if not rows:
        return []
    return await _lease(conn, rows, worker_id=worker_id, lease_seconds=lease_seconds, now=now)


# The oldest pending jobs of some models, built once (with and without SKIP LOCKED).
_PENDING = (
    sa.select(*_CLAIM_COLUMNS)
    .where(
        predictions.c.status == JobStatus.PENDING.value,
        predictions.c.model.in_(sa.bindparam("models", expanding=True)),
    )
    .order_by(predictions.c.created_at, predictions.c.id)
    .limit(sa.bindparam("limit", type_=sa.Integer))
)
_PENDING_SKIP_LOCKED = _PENDING.with_for_update(skip_locked=True)
_RUNNING_OF = (
    sa.select(predictions.c.model, sa.func.count())
    .where(
        predictions.c.status == JobStatus.PROCESSING.value,
        predictions.c.model.in_(sa.bindparam("models", expanding=True)),
    )
    .group_by(predictions.c.model)
)


async def _pending(
    conn: DbConnection, models: Sequence[str], limit: int, skip_locked: bool
) -> list[sa.Row[Any]]:
    """The oldest pending jobs of ``models`` (locked, skipping locked ones, with
    ``skip_locked``)."""
    statement = _PENDING_SKIP_LOCKED if skip_locked else _PENDING
    return list((await conn.execute(statement, {"models": list(models), "limit": limit})).all())


def cap_lock_key(model: str) -> int:
    """The advisory lock (a signed 64-bit key) that serialises claims of a capped model."""
    digest = hashlib.sha256(f"genyard_model_cap:{model}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def _pending_under_caps(
    conn: DbConnection,
    models: Sequence[str],
    capped: list[str],
    caps: Mapping[str, int],
    limit: int,
    skip_locked: bool,
) -> list[sa.Row[Any]]:
    """:func:`_pending` where some models are capped: each gets at most its free slots."""
    if skip_locked:
        # One statement, the keys in ascending order, so two claimers never wait on
        # each other's locks in a cycle. Held until the claim's transaction ends.
        keys = sorted({cap_lock_key(m) for m in capped})
        locks = (sa.func.pg_advisory_xact_lock(sa.literal(k, sa.BigInteger)) for k in keys)
        await conn.execute(sa.select(*locks))
    # A statement of its own, after the lock: it sees the claims committed before it.
    running: dict[str, int] = {
        r[0]: r[1] for r in await conn.execute(_RUNNING_OF, {"models": capped})
    }
    free = {m: caps[m] - running.get(m, 0) for m in capped}
    # Models whose free slots cover the whole claim are read together with the uncapped.
    together = [m for m in models if free.get(m, limit) >= limit]
    alone = [(m, n) for m, n in free.items() if 0 < n < limit]
    rows: list[sa.Row[Any]] = []
    if together:
        rows += await _pending(conn, together, limit, skip_locked)
    for model, n in alone:
        rows += await _pending(conn, [model], n, skip_locked)
    if alone:
        rows.sort(key=lambda r: (r.created_at, r.id))
    return rows[:limit]


async def _lease(
    conn: DbConnection,
    rows: Sequence[sa.Row[Any]],
    *,
    worker_id: str,
    lease_seconds: float,
    now: float,
) -> list[ClaimedJob]:
    """Start the jobs of ``rows`` (pending -> processing), queue their ``start``
    webhooks and lease them."""
    ids = [r.id for r in rows]
    await conn.execute(
        predictions.update()
        .where(predictions.c.id.in_(ids), predictions.c.status == JobStatus.PENDING.value)
        .values(
            status=JobStatus.PROCESSING.value,
            started_at=now,
            attempts=predictions.c.attempts + 1,
        )
    )
    claimed = [
        ClaimedJob(
            r.id,
            r.model,
            r.input,
            r.attempts + 1,
            secrets.token_hex(12),
            r.account_id,
            r.is_public,
            r.output_folder,
            r.webhook_url,
            r.webhook_events,
        )
        for r in rows
    ]
    await webhooks_repo.enqueue(conn, start_deliveries(claimed), now)
    await conn.execute(
        job_leases.insert(),
        [
            {
                "prediction_id": c.id,
                "token": c.token,
                "worker_id": worker_id,
                "expires_at": now + lease_seconds,
            }
            for c in claimed
        ],
    )
    return claimed


def start_deliveries(claimed: Sequence[ClaimedJob]) -> list[webhooks_repo.NewDelivery]:
    """The ``start`` webhook deliveries of jobs that asked for them."""
    return [
        webhooks_repo.NewDelivery(job.id, job.account_id, event, job.webhook_url)
        for job in claimed
        if job.webhook_url
        for event in subscribed(events_for(JobStatus.PROCESSING, False), job.webhook_events)
    ]


async def renew_leases(conn: DbConnection, tokens: dict[str, str], expires_at: float) -> set[str]:
    """Extend the leases still held under ``tokens`` (job id -> token); return lost job ids."""
    if not tokens:
        return set()
    await conn.execute(
        job_leases.update()
        .where(job_leases.c.token.in_(list(tokens.values())))
        .values(expires_at=expires_at)
    )
    held = await conn.execute(
        sa.select(job_leases.c.prediction_id).where(job_leases.c.token.in_(list(tokens.values())))
    )
    return set(tokens) - {r[0] for r in held}


async def refund_attempt(conn: DbConnection, job_id: str) -> None:
    """Uncount the last start: the job was handed back at a graceful shutdown, not lost."""
    await conn.execute(
        predictions.update()
        .where(predictions.c.id == job_id, predictions.c.attempts > 0)
        .values(attempts=predictions.c.attempts - 1)
    )


async def set_progress(conn: DbConnection, job_id: str, token: str, progress: int) -> None:
    lease = sa.select(job_leases.c.prediction_id).where(
        job_leases.c.prediction_id == job_id, job_leases.c.token == token
    )
    await conn.execute(
        predictions.update()
        .where(
            predictions.c.id == job_id,
            predictions.c.status == JobStatus.PROCESSING.value,
            sa.exists(lease),
        )
        .values(progress=progress)
    )


async def expired_leases(conn: DbConnection, before: float) -> list[tuple[str, str, int]]:
    """(job id, token, attempts) of leases that expired before ``before``."""
    rows = await conn.execute(
        sa.select(job_leases.c.prediction_id, job_leases.c.token, predictions.c.attempts)
        .join(predictions, predictions.c.id == job_leases.c.prediction_id)
        .where(job_leases.c.expires_at < before)
    )
    return [(r.prediction_id, r.token, r.attempts) for r in rows]


async def overdue_pending(conn: DbConnection, now: float, limit: int = 500) -> list[str]:
    """Jobs never started that waited past their deadline. A job the reaper returned
    to the queue has waited its turn once already and is not timed out again."""
    rows = await conn.execute(
        sa.select(predictions.c.id)
        .where(
            predictions.c.status == JobStatus.PENDING.value,
            predictions.c.queue_deadline < now,
            predictions.c.attempts == 0,
        )
        .limit(limit)
    )
    return [r[0] for r in rows]
