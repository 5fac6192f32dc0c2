"""domain/estimates: the time estimate's statistics, matching and fallback."""

from __future__ import annotations

from typing import Any

import pytest

from genyard.domain.estimates import (
    DEFAULT_EXPECTED_SECONDS,
    MIN_SAMPLES,
    RECENT_RUNS,
    Run,
    item_count,
    priced_fields,
    sample_fields,
    time_estimate,
)
from genyard.domain.pricing import FREE, Pricing, parse_pricing

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "count": {"type": "integer", "default": 1},
        "quality": {"type": "string", "enum": ["low", "high"], "default": "low"},
        "seconds": {"type": "number", "default": 5},
        "steps": {"type": "integer"},
        "prompt": {"type": "string"},
    },
}


def pricing(table: dict[str, Any]) -> Pricing:
    return parse_pricing(table, SCHEMA)


IMAGES = pricing(
    {
        "rule": "per_item",
        "price": 1,
        "count_fields": ["count"],
        "multipliers": {"quality": {"low": 1, "high": 2}},
    }
)
VIDEO = pricing(
    {
        "rule": "per_second",
        "basis": "output",
        "price": 1,
        "duration_field": "seconds",
        "multipliers": {"steps": [{"up_to": 30, "multiplier": 1}, {"multiplier": 2}]},
    }
)


def runs(*seconds: float, **values: Any) -> list[Run]:
    return [Run(s, dict(values)) for s in seconds]


def test_fields_that_are_matched_and_sampled() -> None:
    assert priced_fields(FREE) == ()
    assert priced_fields(IMAGES) == ("quality",)
    assert sample_fields(IMAGES) == ("quality", "count")
    assert priced_fields(VIDEO) == ("steps", "seconds")
    assert sample_fields(VIDEO) == ("steps", "seconds")


def test_item_count_is_the_pricing_count_or_one() -> None:
    assert item_count(IMAGES, {"count": 4}) == 4
    assert item_count(IMAGES, {}) == 1  # the schema default
    assert item_count(VIDEO, {"seconds": 12}) == 1
    assert item_count(FREE, {"count": 7}) == 1


def test_mean_min_max_and_count_of_recent_runs() -> None:
    est = time_estimate(FREE, {}, runs(2.0, 4.0, 6.0, 12.0))
    assert est.source == "historical" and est.has_historical
    assert est.seconds == est.per_item == 6.0
    assert (est.min_seconds, est.max_seconds, est.sample_count) == (2.0, 12.0, 4)
    assert not est.matched_parameters  # the model prices no parameter
    assert est.to_dict() == {
        "seconds": 6.0,
        "per_item": 6.0,
        "min_seconds": 2.0,
        "max_seconds": 12.0,
        "sample_count": 4,
        "has_historical": True,
        "source": "historical",
        "matched_parameters": False,
    }


def test_only_the_most_recent_runs_count() -> None:
    newest = runs(1.0, count=1) * RECENT_RUNS
    est = time_estimate(FREE, {}, [*newest, *runs(100.0, 100.0, 100.0)])
    assert est.sample_count == RECENT_RUNS
    assert est.seconds == 1.0


@pytest.mark.parametrize("found", range(MIN_SAMPLES))
def test_fewer_than_three_samples_fall_back(found: int) -> None:
    est = time_estimate(FREE, {}, runs(*[1.0] * found))
    assert est.source == "fallback" and not est.has_historical
    assert est.seconds == est.per_item == est.min_seconds == est.max_seconds
    assert est.seconds == DEFAULT_EXPECTED_SECONDS
    assert est.sample_count == found
    assert time_estimate(FREE, {}, [], expected_seconds=2.5).seconds == 2.5


def test_fallback_is_per_item() -> None:
    est = time_estimate(IMAGES, {"count": 4, "quality": "low"}, [], expected_seconds=3)
    assert (est.seconds, est.per_item, est.min_seconds, est.max_seconds) == (12, 3, 3, 3)


def test_per_item_divides_each_run_by_its_own_count() -> None:
    history = [
        Run(8.0, {"count": 4, "quality": "low"}),  # 2 s an item
        Run(3.0, {"count": 1, "quality": "low"}),  # 3
        Run(8.0, {"count": 2, "quality": "low"}),  # 4
    ]
    est = time_estimate(IMAGES, {"count": 5, "quality": "low"}, history)
    assert (est.per_item, est.seconds) == (3.0, 15.0)
    assert (est.min_seconds, est.max_seconds) == (2.0, 4.0)
    assert est.matched_parameters


def test_runs_with_the_same_priced_parameters_are_preferred() -> None:
    history = [
        *runs(1.0, 1.0, quality="low", count=1),
        *runs(10.0, 12.0, 14.0, quality="high", count=1),
        *runs(1.0, 1.0, quality="low", count=1),
    ]
    high = time_estimate(IMAGES, {"quality": "high", "count": 1}, history)
    assert (high.seconds, high.sample_count, high.matched_parameters) == (12.0, 3, True)
    # only 4 low runs: enough on their own
    low = time_estimate(IMAGES, {"quality": "low", "count": 1}, history)
    assert (low.seconds, low.sample_count, low.matched_parameters) == (1.0, 4, True)


def test_too_few_matching_runs_use_the_models_runs_overall() -> None:
    history = [*runs(3.0, 3.0, quality="high"), *runs(6.0, 6.0, quality="low")]
    est = time_estimate(IMAGES, {"quality": "high", "count": 1}, history)
    assert (est.seconds, est.sample_count, est.matched_parameters) == (4.5, 4, False)
    assert est.source == "historical"


def test_duration_is_a_priced_parameter_and_json_equality_matches() -> None:
    history = [*runs(50.0, 50.0, 50.0, seconds=5), *runs(150.0, 150.0, 150.0, seconds=15)]
    assert time_estimate(VIDEO, {"seconds": 5.0}, history).seconds == 50.0
    assert time_estimate(VIDEO, {"seconds": 15}, history).seconds == 150.0
    # an absent field matches runs whose input lacks it too, not ones that state it
    assert time_estimate(VIDEO, {"seconds": 15, "steps": 40}, history).matched_parameters is False


def test_true_is_not_one() -> None:
    schema = {"type": "object", "properties": {"hd": {"type": ["boolean", "integer"]}}}
    rule = parse_pricing({"rule": "per_request", "multipliers": {"hd": {"true": 2}}}, schema)
    history = [*runs(1.0, 1.0, 1.0, hd=1), *runs(9.0, 9.0, 9.0, hd=True)]
    assert time_estimate(rule, {"hd": True}, history).seconds == 9.0
    assert time_estimate(rule, {"hd": 1}, history).seconds == 1.0


def test_runs_that_cannot_be_counted_are_skipped() -> None:
    history = [Run(-1.0, {"count": 1}), Run(5.0, {"count": 2.5}), *runs(2.0, 2.0, 2.0, count=1)]
    est = time_estimate(IMAGES, {"count": 1, "quality": "low"}, history)
    assert (est.seconds, est.sample_count) == (2.0, 3)


def test_seconds_are_rounded_to_milliseconds() -> None:
    est = time_estimate(FREE, {}, runs(1.0, 1.0, 1.0001))
    assert est.seconds == 1.0 and est.max_seconds == 1.0
    assert time_estimate(FREE, {}, runs(1.0, 2.0, 2.0)).seconds == 1.667
