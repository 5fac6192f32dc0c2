"""Estimates: what a call will cost and how long it will take, before it runs. No I/O.

The cost is :func:`genyard.domain.pricing.estimate` (the worst case a hold takes); the
time comes from the model's recent history, by :func:`time_estimate`:

- the samples are the model's latest succeeded runs (at most :data:`RECENT_RUNS`), each
  one's run time (``completed_at - started_at``; the queue wait is not counted);
- runs whose *priced parameters* (:func:`priced_fields`: the fields the pricing
  multiplies by, and a per-second rule's duration field) equal this call's are
  preferred: when at least :data:`MIN_SAMPLES` of them are there, only they count,
  else the model's runs overall do;
- where the pricing counts items (``per_item``), each run's time is divided by its own
  item count, so ``per_item`` is the mean time of one item and ``seconds`` is that
  times this call's count; otherwise ``per_item`` equals ``seconds``;
- ``seconds`` is the mean, ``min_seconds`` and ``max_seconds`` the fastest and slowest
  sample (per item, as the generators' seed shows them);
- with fewer than :data:`MIN_SAMPLES` samples the answer is the ``fallback``: the
  catalog's ``expected_seconds`` for the model (per item), else
  :data:`DEFAULT_EXPECTED_SECONDS`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from genyard.domain.pricing import Pricing, Quote, estimate
from genyard.errors import InvalidRequest

RECENT_RUNS = 20
"""How many recent runs an estimate averages."""
SCAN_RUNS = 200
"""How many of the model's latest runs are searched for ones with the same parameters."""
MIN_SAMPLES = 3
"""Fewer samples than this and the estimate is the fallback."""
DEFAULT_EXPECTED_SECONDS = 10.0
"""The fallback, per item, for a model whose catalog entry states no ``expected_seconds``."""

Source = Literal["historical", "fallback"]


@dataclass(frozen=True, slots=True)
class Run:
    """One succeeded run: its run time and the values of the fields that matter here
    (:func:`sample_fields`; a field the input lacks is absent)."""

    seconds: float
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TimeEstimate:
    seconds: float
    per_item: float
    min_seconds: float
    max_seconds: float
    sample_count: int
    source: Source
    #: Whether the samples are runs with this call's priced parameters (else the
    #: model's runs overall, or none).
    matched_parameters: bool

    @property
    def has_historical(self) -> bool:
        return self.source == "historical"

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "per_item": self.per_item,
            "min_seconds": self.min_seconds,
            "max_seconds": self.max_seconds,
            "sample_count": self.sample_count,
            "has_historical": self.has_historical,
            "source": self.source,
            "matched_parameters": self.matched_parameters,
        }


@dataclass(frozen=True, slots=True)
class Estimate:
    """What ``POST /v1/estimate`` answers, before each face renders it."""

    model: str
    credit_cost: Quote
    time: TimeEstimate
    applied_input: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "credit_cost": self.credit_cost.to_dict(),
            "time_estimate": self.time.to_dict(),
            "applied_input": self.applied_input,
        }


def priced_fields(pricing: Pricing) -> tuple[str, ...]:
    """The parameters a run must share with a call to be its preferred sample."""
    names = [m.field for m in pricing.multipliers]
    if pricing.rule == "per_second" and pricing.duration_field:
        names.append(pricing.duration_field)
    return tuple(dict.fromkeys(names))


def sample_fields(pricing: Pricing) -> tuple[str, ...]:
    """The input fields a run's sample needs: the priced ones and the counted ones."""
    counted = (pricing.count_fields or ()) if pricing.rule == "per_item" else ()
    return tuple(dict.fromkeys((*priced_fields(pricing), *counted)))


def item_count(pricing: Pricing, input: Mapping[str, Any]) -> int:
    """How many items a call makes where the pricing counts items; 1 otherwise."""
    if pricing.rule != "per_item":
        return 1
    return int(estimate(pricing, input).units["items"])


def time_estimate(
    pricing: Pricing,
    input: Mapping[str, Any],
    runs: Sequence[Run],
    *,
    expected_seconds: float | None = None,
    recent: int = RECENT_RUNS,
) -> TimeEstimate:
    """The time a call with ``input`` (defaults filled in) will take, from ``runs``
    (newest first; see the module docstring)."""
    items = item_count(pricing, input)
    wanted = {name: input.get(name) for name in priced_fields(pricing)}
    matching = [r for r in runs if _matches(r, wanted)][:recent]
    matched = bool(wanted) and len(matching) >= MIN_SAMPLES
    chosen = matching if matched else list(runs[:recent])
    per_item = [s for s in (_per_item(pricing, r) for r in chosen) if s is not None]
    if len(per_item) < MIN_SAMPLES:
        fallback = expected_seconds if expected_seconds is not None else DEFAULT_EXPECTED_SECONDS
        return TimeEstimate(
            seconds=_round(fallback * items),
            per_item=_round(fallback),
            min_seconds=_round(fallback),
            max_seconds=_round(fallback),
            sample_count=len(per_item),
            source="fallback",
            matched_parameters=False,
        )
    mean = _round(sum(per_item) / len(per_item))
    return TimeEstimate(
        seconds=_round(mean * items),  # so that seconds is per_item times the count
        per_item=mean,
        min_seconds=_round(min(per_item)),
        max_seconds=_round(max(per_item)),
        sample_count=len(per_item),
        source="historical",
        matched_parameters=matched,
    )


def _matches(run: Run, wanted: Mapping[str, Any]) -> bool:
    return all(_same(run.values.get(name), value) for name, value in wanted.items())


def _same(a: Any, b: Any) -> bool:
    # JSON equality: 1 and 1.0 are one number, but true is not 1.
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _per_item(pricing: Pricing, run: Run) -> float | None:
    """A run's seconds per item; None for a run that cannot be counted (a negative time,
    or an input the pricing cannot count any more, say after a catalog change)."""
    if run.seconds < 0:
        return None
    try:
        items = item_count(pricing, run.values)
    except InvalidRequest:
        return None
    return run.seconds / max(items, 1)


def _round(seconds: float) -> float:
    return round(seconds, 3)
