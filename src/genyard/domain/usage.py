"""Usage reports, the pure part: per model and UTC day, and per API key, from the
predictions of a window (``GET /v1/usage``)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from genyard.domain.pricing import credits


@dataclass(frozen=True, slots=True)
class UsageRow:
    """What a report needs of one prediction."""

    model: str
    api_key_id: str | None
    status: str
    created_at: float
    completed_at: float | None
    credits_charged: int | None


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by linear interpolation; None without values."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def day_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


def report(rows: Iterable[UsageRow], key_names: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """``days``: one entry per (UTC day, model), newest day first: requests, succeeded,
    failed, canceled, credits charged, and latency p50/p95 in seconds (created to
    completed, of the jobs that ended). ``keys``: requests and credits per API key
    (``key_names``: id -> (name, prefix)); ``totals``."""
    groups: dict[tuple[str, str], list[UsageRow]] = defaultdict(list)
    per_key: dict[str | None, list[UsageRow]] = defaultdict(list)
    for row in rows:
        groups[(day_of(row.created_at), row.model)].append(row)
        per_key[row.api_key_id].append(row)
    days: list[dict[str, Any]] = []
    for (day, model), items in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1])):
        latencies = sorted(
            r.completed_at - r.created_at for r in items if r.completed_at is not None
        )
        days.append(
            {
                "date": day,
                "model": model,
                "requests": len(items),
                "succeeded": sum(r.status == "succeeded" for r in items),
                "failed": sum(r.status == "failed" for r in items),
                "canceled": sum(r.status == "canceled" for r in items),
                "credits": credits(sum(r.credits_charged or 0 for r in items)),
                "latency_p50": _round(percentile(latencies, 50)),
                "latency_p95": _round(percentile(latencies, 95)),
            }
        )
    days.sort(key=lambda d: d["date"], reverse=True)
    keys = [
        {
            "key_id": key_id,
            "name": key_names.get(key_id, ("", ""))[0] if key_id else None,
            "prefix": key_names.get(key_id, ("", ""))[1] if key_id else None,
            "requests": len(items),
            "credits": credits(sum(r.credits_charged or 0 for r in items)),
        }
        for key_id, items in sorted(per_key.items(), key=lambda k: k[0] or "")
    ]
    return {
        "days": days,
        "keys": keys,
        "totals": {
            "requests": sum(d["requests"] for d in days),
            "failed": sum(d["failed"] for d in days),
            "credits": credits(sum(r.credits_charged or 0 for g in groups.values() for r in g)),
        },
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
