"""/healthz and /metrics: for operators and load balancers; no key, no rate limit."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from genyard.api.deps import ServicesDep
from genyard.api.responses import JSON
from genyard.db.tables import predictions

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz(services: ServicesDep) -> JSON:
    checks: dict[str, object] = {}
    healthy = True
    try:
        await services.db.ping()
        checks["database"] = "ok"
    except Exception as exc:
        healthy = False
        checks["database"] = f"error: {type(exc).__name__}"
    workers = services.workers
    if services.run_workers:
        alive = workers is not None and not workers.stopping
        healthy = healthy and alive
        checks["workers"] = {
            "status": "ok" if alive else "stopped",
            "running_jobs": len(workers.running) if workers else 0,
            "pools": {
                p.name: {"parallel_calls": p.plan.parallel_calls, "busy": p.busy}
                for p in (workers.pools if workers else [])
            },
        }
    else:
        checks["workers"] = "not in this process"
    return JSON(
        {"status": "ok" if healthy else "unhealthy", "checks": checks},
        status_code=200 if healthy else 503,
    )


@router.get("/metrics")
async def metrics(services: ServicesDep) -> Response:
    async with services.db.read() as conn:
        rows = await conn.execute(
            sa.select(predictions.c.model, sa.func.count())
            .where(predictions.c.status == "pending")
            .group_by(predictions.c.model)
        )
        depth = {model: count for model, count in rows}
    gauge = services.metrics.queue_depth
    gauge.clear()
    for entry in services.catalog.all():
        gauge.labels(entry.id).set(depth.get(entry.id, 0))
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)
