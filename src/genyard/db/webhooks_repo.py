"""SQL for webhooks: the outbox rows, claiming due deliveries, the delivery log and
secret generations (SQLAlchemy Core)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from genyard.db.engine import DbConnection
from genyard.db.tables import predictions, webhook_attempts, webhook_deliveries, webhook_secrets
from genyard.domain.webhooks import DeliveryStatus, WebhookEvent
from genyard.ids import new_id


@dataclass(frozen=True, slots=True)
class NewDelivery:
    prediction_id: str
    account_id: str
    event: WebhookEvent
    url: str


@dataclass(frozen=True, slots=True)
class DueDelivery:
    id: str
    prediction_id: str
    account_id: str
    event: str
    url: str
    attempts: int
    body: str | None
    #: A task callback (the job was made by the tasks face): the body is the task
    #: object and the seed's timeout and retry schedule apply.
    task: bool = False


@dataclass(frozen=True, slots=True)
class Attempt:
    attempted_at: float
    duration_ms: int
    status_code: int | None
    error: str | None


@dataclass(slots=True)
class Delivery:
    id: str
    prediction_id: str
    event: str
    url: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: float | None
    created_at: float
    delivered_at: float | None
    log: list[Attempt]


_INSERT = webhook_deliveries.insert()


async def enqueue(conn: DbConnection, deliveries: Sequence[NewDelivery], now: float) -> None:
    """Write outbox rows, due at once (in the caller's transaction). Rows of one call
    are a microsecond apart, so the log and the dispatcher keep their order."""
    if not deliveries:
        return
    await conn.execute(
        _INSERT,
        [
            {
                "id": new_id("msg"),
                "prediction_id": d.prediction_id,
                "account_id": d.account_id,
                "event": d.event.value,
                "url": d.url,
                "status": DeliveryStatus.PENDING.value,
                "attempts": 0,
                "next_attempt_at": now + i * 1e-6,
                "body": None,
                "created_at": now + i * 1e-6,
                "delivered_at": None,
            }
            for i, d in enumerate(deliveries)
        ],
    )


_DUE = (
    sa.select(
        webhook_deliveries.c.id,
        webhook_deliveries.c.prediction_id,
        webhook_deliveries.c.account_id,
        webhook_deliveries.c.event,
        webhook_deliveries.c.url,
        webhook_deliveries.c.attempts,
        webhook_deliveries.c.body,
        # A subquery, not a join: FOR UPDATE then locks the outbox rows alone.
        sa.select(predictions.c.task_id.is_not(None))
        .where(predictions.c.id == webhook_deliveries.c.prediction_id)
        .scalar_subquery()
        .label("task"),
    )
    .where(
        webhook_deliveries.c.status == DeliveryStatus.PENDING.value,
        webhook_deliveries.c.next_attempt_at <= sa.bindparam("now"),
    )
    .order_by(webhook_deliveries.c.next_attempt_at)
    .limit(sa.bindparam("limit"))
)


async def claim_due(
    conn: DbConnection, now: float, limit: int, hold_until: float, *, skip_locked: bool
) -> list[DueDelivery]:
    """Take due deliveries for one attempt: they are not due again before
    ``hold_until`` (so a dispatcher that dies mid-attempt only delays them)."""
    query = _DUE.with_for_update(skip_locked=True) if skip_locked else _DUE
    rows = (await conn.execute(query, {"now": now, "limit": limit})).all()
    if not rows:
        return []
    await conn.execute(
        webhook_deliveries.update()
        .where(webhook_deliveries.c.id.in_([r.id for r in rows]))
        .values(next_attempt_at=hold_until)
    )
    return [
        DueDelivery(r.id, r.prediction_id, r.account_id, r.event, r.url, r.attempts, r.body,
                    task=bool(r.task))
        for r in rows
    ]  # fmt: skip


async def record_attempt(
    conn: DbConnection,
    delivery_id: str,
    attempt: Attempt,
    *,
    status: DeliveryStatus,
    attempts: int,
    next_attempt_at: float | None,
    body: str,
) -> None:
    """Log an attempt and move the delivery on (delivered, failed, or due again)."""
    await conn.execute(
        webhook_attempts.insert().values(
            delivery_id=delivery_id,
            attempted_at=attempt.attempted_at,
            duration_ms=attempt.duration_ms,
            status_code=attempt.status_code,
            error=attempt.error,
        )
    )
    values: dict[str, Any] = {
        "status": status.value,
        "attempts": attempts,
        "next_attempt_at": next_attempt_at,
        "body": body,
    }
    if status is DeliveryStatus.DELIVERED:
        values["delivered_at"] = attempt.attempted_at
    await conn.execute(
        webhook_deliveries.update().where(webhook_deliveries.c.id == delivery_id).values(values)
    )


async def list_for_prediction(
    conn: DbConnection, prediction_id: str, account_id: str
) -> list[Delivery]:
    rows = (
        await conn.execute(
            sa.select(webhook_deliveries)
            .where(
                webhook_deliveries.c.prediction_id == prediction_id,
                webhook_deliveries.c.account_id == account_id,
            )
            .order_by(webhook_deliveries.c.created_at, webhook_deliveries.c.id)
        )
    ).all()
    deliveries = {
        r.id: Delivery(
            id=r.id,
            prediction_id=r.prediction_id,
            event=r.event,
            url=r.url,
            status=DeliveryStatus(r.status),
            attempts=r.attempts,
            next_attempt_at=r.next_attempt_at,
            created_at=r.created_at,
            delivered_at=r.delivered_at,
            log=[],
        )
        for r in rows
    }
    if deliveries:
        attempts = await conn.execute(
            sa.select(webhook_attempts)
            .where(webhook_attempts.c.delivery_id.in_(list(deliveries)))
            .order_by(webhook_attempts.c.id)
        )
        for a in attempts:
            deliveries[a.delivery_id].log.append(
                Attempt(a.attempted_at, a.duration_ms, a.status_code, a.error)
            )
    return list(deliveries.values())


async def redeliver(
    conn: DbConnection, delivery_id: str, prediction_id: str, account_id: str, now: float
) -> bool:
    """Queue a finished delivery again with a fresh retry schedule; False when there is
    no such finished delivery (unknown, or still pending)."""
    result = await conn.execute(
        webhook_deliveries.update()
        .where(
            webhook_deliveries.c.id == delivery_id,
            webhook_deliveries.c.prediction_id == prediction_id,
            webhook_deliveries.c.account_id == account_id,
            webhook_deliveries.c.status != DeliveryStatus.PENDING.value,
        )
        .values(status=DeliveryStatus.PENDING.value, attempts=0, next_attempt_at=now)
    )
    return result.rowcount == 1


async def secret_generation(conn: DbConnection, account_id: str) -> tuple[int, float | None]:
    """(generation, when it was rotated in); (0, None) for an account never rotated."""
    row = (
        await conn.execute(
            sa.select(webhook_secrets.c.version, webhook_secrets.c.rotated_at).where(
                webhook_secrets.c.account_id == account_id
            )
        )
    ).first()
    return (row.version, row.rotated_at) if row else (0, None)


async def rotate_secret(conn: DbConnection, account_id: str, now: float) -> int:
    """Move the account to its next secret generation; return it."""
    updated = await conn.execute(
        webhook_secrets.update()
        .where(webhook_secrets.c.account_id == account_id)
        .values(version=webhook_secrets.c.version + 1, rotated_at=now)
        .returning(webhook_secrets.c.version)
    )
    row = updated.first()
    if row is not None:
        return int(row.version)
    await conn.execute(
        webhook_secrets.insert().values(account_id=account_id, version=1, rotated_at=now)
    )
    return 1
