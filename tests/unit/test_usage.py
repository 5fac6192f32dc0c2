"""The usage report's arithmetic: groups per UTC day and model, counts, credits,
latency percentiles, per-key sums."""

from __future__ import annotations

from genyard.domain.usage import UsageRow, percentile, report

DAY = 86400.0
T0 = 20_000 * DAY  # 2024-10-04 00:00 UTC


def row(model: str, key: str | None, status: str, at: float, took: float | None, micro: int):
    return UsageRow(model, key, status, at, None if took is None else at + took, micro)


def test_percentiles() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.05


def test_report_groups_by_day_and_model_and_key() -> None:
    rows = [
        row("a/x", "key_1", "succeeded", T0 + 10, 1.0, 10_000),
        row("a/x", "key_1", "succeeded", T0 + 20, 3.0, 10_000),
        row("a/x", "key_2", "failed", T0 + 30, 0.5, 0),
        row("a/x", None, "pending", T0 + 40, None, 0),
        row("b/y", "key_2", "canceled", T0 + DAY + 5, 2.0, 0),
    ]
    out = report(rows, {"key_1": ("ci", "gy_live_ab"), "key_2": ("web", "gy_live_cd")})
    assert out["days"] == [
        {
            "date": "2024-10-05", "model": "b/y", "requests": 1, "succeeded": 0, "failed": 0,
            "canceled": 1, "credits": 0.0, "latency_p50": 2.0, "latency_p95": 2.0,
        },
        {
            "date": "2024-10-04", "model": "a/x", "requests": 4, "succeeded": 2, "failed": 1,
            "canceled": 0, "credits": 0.02, "latency_p50": 1.0, "latency_p95": 2.8,
        },
    ]  # fmt: skip
    assert out["keys"] == [
        {"key_id": None, "name": None, "prefix": None, "requests": 1, "credits": 0.0},
        {"key_id": "key_1", "name": "ci", "prefix": "gy_live_ab", "requests": 2, "credits": 0.02},
        {"key_id": "key_2", "name": "web", "prefix": "gy_live_cd", "requests": 2, "credits": 0.0},
    ]
    assert out["totals"] == {"requests": 5, "failed": 1, "credits": 0.02}
