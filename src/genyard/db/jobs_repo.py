"""SQL for predictions: insert, read, list, queue position and logs (SQLAlchemy Core)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from genyard.db.engine import DbConnection, InlineConnection
from genyard.db.tables import prediction_logs, prediction_output_deltas, predictions
from genyard.domain.estimates import Run
from genyard.domain.jobs import Job, JobStatus
from genyard.domain.usage import UsageRow


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def row_to_job(row: sa.Row[Any]) -> Job:
    m = row._mapping
    return Job(
        id=m["id"],
        account_id=m["account_id"],
        user_id=m["user_id"],
        model=m["model"],
        input=orjson.loads(m["input"]),
        status=JobStatus(m["status"]),
        created_at=m["created_at"],
        output=orjson.loads(m["output"]) if m["output"] is not None else None,
        error_code=m["error_code"],
        error_message=m["error_message"],
        progress=m["progress"],
        is_public=bool(m["is_public"]),
        output_folder=m["output_folder"],
        webhook_url=m["webhook_url"],
        webhook_events=[e for e in m["webhook_events"].split(",") if e],
        attempts=m["attempts"],
        started_at=m["started_at"],
        completed_at=m["completed_at"],
        usage=orjson.loads(m["usage"]) if m["usage"] is not None else None,
        credits_held=m["credits_held"],
        credits_charged=m["credits_charged"],
        task_id=m["task_id"],
    )


_INSERT_COLUMNS = (
    "id", "account_id", "user_id", "api_key_id", "model", "input", "status", "progress",
    "is_public", "output_folder", "webhook_url", "webhook_events", "idempotency_key",
    "request_hash", "attempts", "created_at", "queue_deadline", "credits_held", "task_id",
)  # fmt: skip
# Built once (its cache key too): insert the row unless the account already has
# ``cap`` pending jobs, in one statement.
_INSERT_UNDER_CAP = predictions.insert().from_select(
    list(_INSERT_COLUMNS),
    sa.select(*(sa.bindparam(c, type_=predictions.c[c].type) for c in _INSERT_COLUMNS)).where(
        sa.select(sa.func.count())
        .where(
            predictions.c.account_id == sa.bindparam("cap_account", type_=sa.String),
            predictions.c.status == JobStatus.PENDING.value,
        )
        .scalar_subquery()
        < sa.bindparam("cap", type_=sa.Integer)
    ),
)


async def insert_job(
    conn: DbConnection,
    job: Job,
    *,
    api_key_id: str | None,
    idempotency_key: str | None,
    request_hash: str | None,
    queue_deadline: float | None,
    max_pending: int,
) -> bool:
    """Insert a pending job; False (nothing written) when its account already has
    ``max_pending`` pending jobs."""
    result = await conn.execute(
        _INSERT_UNDER_CAP,
        {
            "id": job.id,
            "account_id": job.account_id,
            "user_id": job.user_id,
            "api_key_id": api_key_id,
            "model": job.model,
            "input": dumps(job.input),
            "status": job.status.value,
            "progress": 0,
            "is_public": job.is_public,
            "output_folder": job.output_folder,
            "webhook_url": job.webhook_url,
            "webhook_events": ",".join(job.webhook_events),
            "idempotency_key": idempotency_key,
            "request_hash": request_hash,
            "attempts": 0,
            "created_at": job.created_at,
            "queue_deadline": queue_deadline,
            "credits_held": job.credits_held,
            "task_id": job.task_id,
            "cap_account": job.account_id,
            "cap": max_pending,
        },
    )
    return result.rowcount == 1


async def get_job(conn: DbConnection, job_id: str, account_id: str | None = None) -> Job | None:
    query = sa.select(predictions).where(predictions.c.id == job_id)
    if account_id is not None:
        query = query.where(predictions.c.account_id == account_id)
    row = (await conn.execute(query)).first()
    return row_to_job(row) if row else None


_JOB_WITH_LOGS = (
    sa.select(predictions, prediction_logs.c.line)
    .outerjoin(prediction_logs, prediction_logs.c.prediction_id == predictions.c.id)
    .where(
        predictions.c.id == sa.bindparam("job_id"),
        predictions.c.account_id == sa.bindparam("account_id"),
    )
    .order_by(prediction_logs.c.id)
)


async def get_job_with_logs(conn: DbConnection, job_id: str, account_id: str) -> Job | None:
    """A job and its log lines in one round trip (the job row repeats per line)."""
    params = {"job_id": job_id, "account_id": account_id}
    rows = (await conn.execute(_JOB_WITH_LOGS, params)).all()
    if not rows:
        return None
    job = row_to_job(rows[0])
    job.logs = [r.line for r in rows if r.line is not None]
    return job


async def find_task(conn: DbConnection, task_id: str, account_id: str) -> str | None:
    """The id of the account's prediction the tasks face made as ``task_id``, if any."""
    row = (
        await conn.execute(
            sa.select(predictions.c.id).where(
                predictions.c.task_id == task_id, predictions.c.account_id == account_id
            )
        )
    ).first()
    return row.id if row else None


async def find_idempotent(
    conn: DbConnection, account_id: str, key: str
) -> tuple[str, str | None] | None:
    """(prediction id, request hash) stored under an idempotency key, if any."""
    row = (
        await conn.execute(
            sa.select(predictions.c.id, predictions.c.request_hash).where(
                predictions.c.account_id == account_id,
                predictions.c.idempotency_key == key,
            )
        )
    ).first()
    return (row.id, row.request_hash) if row else None


async def count_pending(conn: DbConnection, account_id: str) -> int:
    query = sa.select(sa.func.count()).where(
        predictions.c.account_id == account_id,
        predictions.c.status == JobStatus.PENDING.value,
    )
    return int((await conn.execute(query)).scalar_one())


async def queue_position(conn: DbConnection, job: Job) -> int:
    """1 + the pending jobs of the same model created before this one."""
    query = sa.select(sa.func.count()).where(
        predictions.c.status == JobStatus.PENDING.value,
        predictions.c.model == job.model,
        sa.or_(
            predictions.c.created_at < job.created_at,
            sa.and_(predictions.c.created_at == job.created_at, predictions.c.id < job.id),
        ),
    )
    return 1 + int((await conn.execute(query)).scalar_one())


async def _append(
    conn: DbConnection, table: sa.Table, column: str, rows: Sequence[tuple[str, float, str]]
) -> None:
    """Append (job id, time, value) rows to an append-only per-job table, in order."""
    if rows:
        await conn.execute(
            table.insert(),
            [{"prediction_id": job, column: value, "created_at": ts} for job, ts, value in rows],
        )


async def append_logs(conn: DbConnection, lines: Sequence[tuple[str, float, str]]) -> None:
    """Append (job id, time, line) log lines."""
    await _append(conn, prediction_logs, "line", lines)


async def append_deltas(conn: DbConnection, pieces: Sequence[tuple[str, float, str]]) -> None:
    """Append (job id, time, piece) output deltas."""
    await _append(conn, prediction_output_deltas, "data", pieces)


async def list_jobs(
    conn: DbConnection,
    account_id: str,
    *,
    limit: int,
    before: tuple[float, str] | None = None,
    status: str | None = None,
    model: str | None = None,
) -> list[Job]:
    """Newest first; ``before`` is the (created_at, id) of the last item already seen."""
    query = sa.select(predictions).where(predictions.c.account_id == account_id)
    if status:
        query = query.where(predictions.c.status == status)
    if model:
        query = query.where(predictions.c.model == model)
    if before:
        created, job_id = before
        query = query.where(
            sa.or_(
                predictions.c.created_at < created,
                sa.and_(predictions.c.created_at == created, predictions.c.id < job_id),
            )
        )
    query = query.order_by(predictions.c.created_at.desc(), predictions.c.id.desc()).limit(limit)
    return [row_to_job(r) for r in await conn.execute(query)]


async def read_logs_after(conn: DbConnection, job_id: str, after_id: int) -> list[tuple[int, str]]:
    """Log lines with a row id above ``after_id``, oldest first (for streams that resume)."""
    rows = await conn.execute(
        sa.select(prediction_logs.c.id, prediction_logs.c.line)
        .where(prediction_logs.c.prediction_id == job_id, prediction_logs.c.id > after_id)
        .order_by(prediction_logs.c.id)
    )
    return [(r.id, r.line) for r in rows]


async def read_deltas_after(
    conn: DbConnection, job_id: str, after_id: int
) -> list[tuple[int, str]]:
    """Output deltas with a row id above ``after_id``, oldest first."""
    rows = await conn.execute(
        sa.select(prediction_output_deltas.c.id, prediction_output_deltas.c.data)
        .where(
            prediction_output_deltas.c.prediction_id == job_id,
            prediction_output_deltas.c.id > after_id,
        )
        .order_by(prediction_output_deltas.c.id)
    )
    return [(r.id, r.data) for r in rows]


def recent_runs_query(fields: Sequence[str], *, sqlite: bool) -> sa.Select[Any]:
    """The query of :func:`recent_runs` (``limit`` and ``model`` are bound parameters)."""
    # SQLite keeps JSON in TEXT and its JSON functions read it as is (a CAST would give
    # the column numeric affinity); PostgreSQL needs the text cast to json.
    source = predictions.c.input
    as_json = sa.type_coerce(source, sa.JSON) if sqlite else sa.cast(source, sa.JSON)
    columns = [as_json[name].label(f"f{i}") for i, name in enumerate(fields)]
    return (
        sa.select(predictions.c.started_at, predictions.c.completed_at, *columns)
        .where(
            predictions.c.status == JobStatus.SUCCEEDED.value,
            predictions.c.model == sa.bindparam("model", type_=sa.String),
            predictions.c.started_at.is_not(None),
            predictions.c.completed_at.is_not(None),
        )
        .order_by(predictions.c.created_at.desc())
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )


async def recent_runs(
    conn: DbConnection, model: str, fields: Sequence[str], *, limit: int
) -> list[Run]:
    """The model's latest ``limit`` succeeded runs, newest first: each one's run time and
    the values of ``fields`` in its input (extracted by the database, so large inputs
    are not sent over; a field the input lacks, or holds null, is left out).

    Newest by ``created_at``, so ix_predictions_queue (status, model, created_at) serves
    the filter and the order, and the scan stops after ``limit`` rows."""
    query = recent_runs_query(fields, sqlite=isinstance(conn, InlineConnection))
    runs = []
    for row in await conn.execute(query, {"model": model, "limit": limit}):
        m = row._mapping
        values = {name: m[f"f{i}"] for i, name in enumerate(fields) if m[f"f{i}"] is not None}
        runs.append(Run(m["completed_at"] - m["started_at"], values))
    return runs


async def usage_rows(conn: DbConnection, account_id: str, since: float) -> list[UsageRow]:
    """The account's predictions created since ``since`` (ix_predictions_account_created)."""
    p = predictions.c
    rows = await conn.execute(
        sa.select(
            p.model, p.api_key_id, p.status, p.created_at, p.completed_at, p.credits_charged
        ).where(p.account_id == account_id, p.created_at >= since)
    )
    return [UsageRow(*row) for row in rows]
