"""domain/pricing: every rule, multipliers, the bulk discount, rounding, charge <= estimate."""

from __future__ import annotations

import random
from fractions import Fraction
from typing import Any

import pytest

from genyard.domain.pricing import (
    FREE,
    MICRO,
    Pricing,
    PricingError,
    Quote,
    charge,
    estimate,
    parse_pricing,
)
from genyard.errors import InvalidRequest

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["prompt"],
    "properties": {
        "prompt": {"type": "string"},
        "text": {"anyOf": [{"type": "string"}, {"type": "array"}]},
        "messages": {"type": "array"},
        "count": {"type": "integer", "default": 1},
        "images": {"type": "array"},
        "seconds": {"type": "number", "default": 5},
        "video_url": {"type": "string"},
        "max_tokens": {"type": "integer"},
        "quality": {"type": "string", "enum": ["low", "medium", "high", "auto"], "default": "auto"},
        "style": {"type": "string"},
        "length": {"type": "integer"},
        "hd": {"type": "boolean"},
    },
}


def pricing(**table: Any) -> Pricing:
    return parse_pricing(table, SCHEMA)


def units(quote: Quote) -> dict[str, Fraction]:
    return dict(quote.units)


# Rules ---------------------------------------------------------------------------------


def test_per_request_is_flat_and_charge_equals_estimate() -> None:
    p = pricing(rule="per_request", price=0.5)
    est = estimate(p, {"prompt": "x"})
    assert (est.total, est.subtotal, est.discount, est.discount_percent) == (500_000, 500_000, 0, 0)
    assert units(est) == {"requests": 1}
    got = charge(p, {"prompt": "x"}, {"items": 9, "seconds": 99})
    assert (got.total, got.clamped, got.unreported) == (500_000, False, ())


def test_per_item_multiplies_count_fields_and_charges_the_items_made() -> None:
    p = pricing(rule="per_item", price=0.25, count_fields=["count", "images"])
    inp = {"prompt": "x", "count": 3, "images": ["a", "b"]}
    assert estimate(p, inp).total == 6 * 250_000
    assert units(estimate(p, inp)) == {"items": 6}
    assert estimate(p, {"prompt": "x"}).total == 250_000  # count's default 1, images absent: 1
    fewer = charge(p, inp, {"items": 4})
    assert (fewer.total, fewer.clamped) == (1_000_000, False)
    unreported = charge(p, inp, {})
    assert (unreported.total, unreported.unreported) == (1_500_000, ("items",))


def test_per_item_refuses_a_count_that_is_not_a_whole_number() -> None:
    p = pricing(rule="per_item", price=1, count_fields=["count"])
    for bad in (2.5, "3", -1, True):
        with pytest.raises(InvalidRequest) as info:
            estimate(p, {"count": bad})
        assert info.value.details == {"field": "input.count"}
    assert estimate(p, {"count": 3.0}).total == 3 * MICRO


def test_per_second_output_uses_the_stated_duration_capped_by_max_seconds() -> None:
    p = pricing(
        rule="per_second", basis="output", price=0.1, duration_field="seconds", max_seconds=10
    )
    assert estimate(p, {}).total == 500_000  # the schema default, 5 s
    assert estimate(p, {"seconds": 8}).total == 800_000
    assert estimate(p, {"seconds": 12}).total == 1_000_000  # the model makes at most 10 s
    assert charge(p, {"seconds": 8}, {"seconds": 7.5}).total == 750_000
    assert units(charge(p, {"seconds": 8}, {"seconds": 7.5})) == {"seconds": Fraction(15, 2)}


def test_per_second_input_basis_holds_max_seconds_and_charges_the_measured_input() -> None:
    # The video upscaler: the input is a URL, its length unknown until the engine reads it.
    p = pricing(rule="per_second", basis="input", price=0.048, max_seconds=600)
    inp = {"video_url": "https://example.com/v.mp4"}
    assert estimate(p, inp).total == 28_800_000  # the seed's credits_reserved, 28.8
    assert estimate(p, inp).to_dict()["total"] == 28.8
    assert charge(p, inp, {"seconds": 61.3}).total == 2_942_400


def test_per_token_bounds_input_by_bytes_and_output_by_max_tokens() -> None:
    p = pricing(
        rule="per_token",
        per=1000,
        input_price=0.5,
        output_price=1.5,
        input_field="messages",
        overhead_tokens=4,
        output_limit_field="max_tokens",
        max_output_tokens=4096,
    )
    messages = [{"role": "user", "content": "héllo"}]  # strings of 4 and 6 bytes
    est = estimate(p, {"messages": messages, "max_tokens": 100})
    assert units(est) == {"input_tokens": 18, "output_tokens": 100}
    assert est.total == 18 * 500 + 100 * 1500
    assert units(estimate(p, {"messages": messages})) == {"input_tokens": 18, "output_tokens": 4096}
    assert estimate(p, {"messages": messages, "max_tokens": 10**6}).units["output_tokens"] == 4096
    got = charge(
        p, {"messages": messages, "max_tokens": 100}, {"input_tokens": 7, "output_tokens": 42}
    )
    assert got.total == 7 * 500 + 42 * 1500


def test_per_token_with_max_input_tokens_caps_the_input_bound() -> None:
    p = pricing(rule="per_token", input_price=0.000001, input_field="text", max_input_tokens=10)
    assert units(estimate(p, {"text": "x" * 50})) == {"input_tokens": 10, "output_tokens": 0}
    assert units(estimate(p, {"text": "xyz"})) == {"input_tokens": 3, "output_tokens": 0}
    assert units(estimate(p, {})) == {"input_tokens": 10, "output_tokens": 0}


def test_per_character_counts_characters_of_the_field() -> None:
    p = pricing(rule="per_character", per=1000, price=0.3, input_field="text")
    assert estimate(p, {"text": "안녕하세요 world"}).total == 11 * 300
    assert estimate(p, {"text": ["ab", "cde"]}).total == 5 * 300
    assert charge(p, {"text": "안녕하세요 world"}, None).total == 3300
    assert charge(p, {"text": "안녕하세요 world"}, {"characters": 6}).total == 1800


# Rounding ------------------------------------------------------------------------------


def test_rounding_is_up_to_a_whole_micro_credit() -> None:
    p = pricing(rule="per_item", price=0.000001, per=3, count_fields=["count"])
    assert [estimate(p, {"count": n}).total for n in (0, 1, 2, 3, 4, 7)] == [0, 1, 1, 1, 2, 3]


def test_rounding_happens_once_at_the_end() -> None:
    # Half a micro-credit in and half out: one micro-credit, not two.
    p = pricing(
        rule="per_token",
        per=2,
        input_price=0.000001,
        output_price=0.000001,
        input_field="text",
        max_output_tokens=1,
    )
    assert estimate(p, {"text": "a"}).total == 1


# Multipliers ---------------------------------------------------------------------------


def test_value_multipliers_use_the_default_and_one_for_unlisted_values() -> None:
    p = pricing(
        rule="per_request", price=1, multipliers={"quality": {"low": 0.5, "high": 2, "auto": 2}}
    )
    assert [estimate(p, {"quality": q}).total for q in ("low", "high", "medium")] == [
        500_000,
        2_000_000,
        1_000_000,  # medium is not listed: 1
    ]
    assert estimate(p, {}).total == 2_000_000  # the schema default, auto
    assert estimate(p, {"quality": "high"}).multipliers == {"quality": 2}


def test_star_sets_the_multiplier_of_unlisted_and_absent_values() -> None:
    p = pricing(rule="per_request", price=1, multipliers={"style": {"plain": 1, "*": 1.5}})
    assert estimate(p, {"style": "plain"}).total == 1_000_000
    assert estimate(p, {"style": "baroque"}).total == 1_500_000
    assert estimate(p, {}).total == 1_500_000


def test_boolean_values_are_named_true_and_false() -> None:
    p = pricing(rule="per_request", price=1, multipliers={"hd": {"true": 3}})
    assert (estimate(p, {"hd": True}).total, estimate(p, {"hd": False}).total) == (3 * MICRO, MICRO)


def test_range_multipliers_and_several_multipliers_multiply() -> None:
    p = pricing(
        rule="per_request",
        price=1,
        multipliers={
            "length": [
                {"up_to": 500, "multiplier": 1},
                {"up_to": 2000, "multiplier": 1.5},
                {"multiplier": 2.5},
            ],
            "quality": {"high": 2},
        },
    )
    totals = [estimate(p, {"length": n}).total for n in (0, 500, 501, 2000, 2001, 10**9)]
    assert totals == [1_000_000, 1_000_000, 1_500_000, 1_500_000, 2_500_000, 2_500_000]
    assert estimate(p, {}).total == 1_000_000  # no length: 1
    both = estimate(p, {"length": 1000, "quality": "high"})
    assert (both.total, both.multipliers) == (3_000_000, {"length": Fraction(3, 2), "quality": 2})


# Discount ------------------------------------------------------------------------------


def test_bulk_discount_is_count_percent_off_capped_at_ten() -> None:
    p = pricing(rule="per_item", price=3, count_fields=["count"], discount={})
    five = estimate(p, {"count": 5})
    assert (five.subtotal, five.total, five.discount, five.discount_percent) == (
        15_000_000,
        14_250_000,
        750_000,
        5,
    )
    twelve = estimate(p, {"count": 12})
    assert (twelve.total, twelve.discount_percent) == (32_400_000, 10)
    one = estimate(p, {"count": 1})
    assert (one.total, one.discount_percent) == (3_000_000, 0)  # min_count 2


def test_discount_cap_and_min_count_are_configurable() -> None:
    p = pricing(
        rule="per_item",
        price=1,
        count_fields=["count"],
        discount={"cap_percent": 3, "min_count": 1},
    )
    assert [estimate(p, {"count": n}).discount_percent for n in (1, 2, 3, 9)] == [1, 2, 3, 3]
    assert estimate(p, {"count": 1}).total == 990_000


def test_discount_is_rounded_in_the_buyers_disfavour_only_by_the_total() -> None:
    # 5 x 3 micro-credits, 5 percent off: 14.25 rounds up to 15, so nothing is saved
    # (the seed's "discount": 0 with "discount_percent": 5).
    p = pricing(rule="per_item", price=0.000003, count_fields=["count"], discount={})
    q = estimate(p, {"count": 5})
    assert (q.total, q.subtotal, q.discount, q.discount_percent) == (15, 15, 0, 5)


def test_charge_keeps_the_requested_count_discount() -> None:
    p = pricing(rule="per_item", price=1, count_fields=["count"], discount={})
    got = charge(p, {"count": 10}, {"items": 4})
    assert (got.total, got.discount_percent) == (3_600_000, 10)


# Charge <= estimate --------------------------------------------------------------------

ALL_RULES = [
    pricing(rule="per_request", price=0.7, multipliers={"quality": {"high": 2}}),
    pricing(rule="per_item", price=0.333333, count_fields=["count"], discount={}),
    pricing(
        rule="per_second", basis="output", price=0.01, duration_field="seconds", max_seconds=20
    ),
    pricing(rule="per_second", basis="input", price=0.048, max_seconds=600),
    pricing(
        rule="per_token",
        per=1000,
        input_price=0.15,
        output_price=0.6,
        input_field="text",
        overhead_tokens=3,
        output_limit_field="max_tokens",
        max_output_tokens=2048,
        multipliers={"length": [{"up_to": 10, "multiplier": 0.9}, {"multiplier": 1.1}]},
    ),
    pricing(rule="per_character", per=1000, price=0.015, input_field="text"),
]


def random_usage(rng: random.Random) -> dict[str, Any]:
    usage: dict[str, Any] = {}
    for unit in ("items", "seconds", "input_tokens", "output_tokens", "characters"):
        roll = rng.random()
        if roll < 0.15:
            continue
        if roll < 0.2:
            usage[unit] = rng.choice(["many", None, -3, True, float("nan"), float("inf"), [1]])
        elif roll < 0.6:
            usage[unit] = rng.randint(0, 50)
        elif roll < 0.8:
            usage[unit] = round(rng.uniform(0, 5000), rng.randint(0, 4))
        else:
            usage[unit] = rng.randint(0, 10**9)
    return usage


def random_input(rng: random.Random) -> dict[str, Any]:
    text = "".join(rng.choice("ab 안녕🙂") for _ in range(rng.randint(0, 40)))
    inp: dict[str, Any] = {"prompt": "p", "text": text if rng.random() < 0.5 else [text, text]}
    for name, value in (
        ("count", rng.randint(0, 12)),
        ("seconds", round(rng.uniform(0, 30), 2)),
        ("max_tokens", rng.randint(1, 5000)),
        ("quality", rng.choice(["low", "high", "auto"])),
        ("length", rng.randint(0, 20)),
    ):
        if rng.random() < 0.7:
            inp[name] = value
    return inp


def test_charge_never_exceeds_the_estimate_nor_the_hold() -> None:
    rng = random.Random(20240505)
    clamped = 0
    for _ in range(3000):
        p = rng.choice(ALL_RULES)
        inp = random_input(rng)
        est = estimate(p, inp)
        held = rng.choice([None, None, rng.randint(0, est.total + 5)])
        got = charge(p, inp, random_usage(rng), held=held)
        ceiling = est.total if held is None else min(est.total, held)
        assert 0 <= got.total <= ceiling
        assert got.clamped == (got.unclamped_total > ceiling)
        assert got.total == min(got.unclamped_total, ceiling)
        clamped += got.clamped
    assert 100 < clamped < 2900  # the loop does exercise both branches


def test_estimate_equals_charge_for_deterministic_rules() -> None:
    rng = random.Random(7)
    deterministic = [p for p in ALL_RULES if p.rule in ("per_request", "per_item", "per_character")]
    for _ in range(500):
        p = rng.choice(deterministic)
        inp = random_input(rng)
        est = estimate(p, inp)
        matching = {unit: int(count) for unit, count in est.units.items()}
        for usage in (None, {}, matching):
            got = charge(p, inp, usage)
            assert (got.total, got.subtotal, got.discount) == (
                est.total,
                est.subtotal,
                est.discount,
            )
            assert not got.clamped


def test_a_clamped_charge_says_so() -> None:
    p = pricing(rule="per_second", basis="input", price=1, max_seconds=10)
    got = charge(p, {}, {"seconds": 25})
    assert (got.total, got.unclamped_total, got.clamped) == (10 * MICRO, 25 * MICRO, True)
    assert charge(p, {}, {"seconds": 4}, held=3 * MICRO).total == 3 * MICRO


# Shapes --------------------------------------------------------------------------------


def test_quote_to_dict_shows_credits_as_decimals() -> None:
    p = pricing(
        rule="per_item",
        price=1.5,
        count_fields=["count"],
        discount={},
        multipliers={"quality": {"high": 2}},
    )
    assert estimate(p, {"count": 4, "quality": "high"}).to_dict() == {
        "kind": "estimate",
        "rule": "per_item",
        "total": 11.52,
        "total_micro": 11_520_000,
        "subtotal": 12.0,
        "discount": 0.48,
        "discount_percent": 4,
        "units": {"items": 4},
        "multipliers": {"quality": 2},
        "clamped": False,
        "unclamped_total": 11.52,
        "unreported": [],
    }
    seconds = pricing(rule="per_second", basis="output", price=1, duration_field="seconds")
    assert charge(seconds, {}, {"seconds": 2.5}).to_dict()["units"] == {"seconds": 2.5}


def test_pricing_to_dict_is_the_table_in_credits() -> None:
    p = pricing(
        rule="per_second",
        basis="input",
        price=0.048,
        per=1,
        max_seconds=600,
        multipliers={
            "quality": {"high": 1.5, "*": 2},
            "length": [{"up_to": 10, "multiplier": 1}, {"multiplier": 0.5}],
        },
        discount={"cap_percent": 5},
    )
    assert p.to_dict() == {
        "rule": "per_second",
        "price": 0.048,
        "per": 1,
        "basis": "input",
        "max_seconds": 600,
        "multipliers": {
            "quality": {"high": 1.5, "*": 2},
            "length": [{"up_to": 10, "multiplier": 1}, {"multiplier": 0.5}],
        },
        "discount": {"field": "count", "cap_percent": 5, "min_count": 2},
    }
    assert parse_pricing(p.to_dict(), SCHEMA) == p  # round trip
    assert FREE.to_dict() == {"rule": "per_request", "price": 0.0}
    assert estimate(FREE, {}).total == 0


# Bad tables ----------------------------------------------------------------------------

BAD_TABLES: dict[str, tuple[Any, str]] = {
    "no rule": ({"price": 1}, "model.pricing.rule is required"),
    "unknown rule": ({"rule": "per_vibe"}, "model.pricing.rule 'per_vibe' is not one of"),
    "negative price": (
        {"rule": "per_request", "price": -1},
        "model.pricing.price must not be negative",
    ),
    "price not a number": (
        {"rule": "per_request", "price": "1"},
        "model.pricing.price must be a number",
    ),
    "price finer than a micro-credit": (
        {"rule": "per_item", "price": 0.0000001},
        "model.pricing.price = 1e-07 is finer than a micro-credit",
    ),
    "negative output price": (
        {"rule": "per_token", "output_price": -0.5, "max_output_tokens": 9},
        "model.pricing.output_price must not be negative",
    ),
    "key of another rule": (
        {"rule": "per_request", "price": 1, "basis": "input"},
        "model.pricing: unknown field(s) basis for rule per_request",
    ),
    "per of zero": ({"rule": "per_item", "price": 1, "per": 0}, "model.pricing.per must be"),
    "count field not in the schema": (
        {"rule": "per_item", "price": 1, "count_fields": ["n"]},
        "model.pricing.count_fields: the input_schema has no field 'n'",
    ),
    "per_second without basis": (
        {"rule": "per_second", "price": 1, "max_seconds": 5},
        "model.pricing.basis must be 'input' or 'output'",
    ),
    "per_second without a worst case": (
        {"rule": "per_second", "price": 1, "basis": "input", "duration_field": "video_url"},
        "model.pricing.max_seconds is required",
    ),
    "per_token output without a bound": (
        {"rule": "per_token", "output_price": 1, "output_limit_field": "max_tokens"},
        "model.pricing.max_output_tokens is required",
    ),
    "per_token input without a bound": (
        {"rule": "per_token", "input_price": 1},
        "model.pricing.input_field (or max_input_tokens) is required",
    ),
    "per_character without a field": (
        {"rule": "per_character", "price": 1},
        "model.pricing.input_field is required",
    ),
    "multiplier on a field the schema lacks": (
        {"rule": "per_request", "multipliers": {"resolution": {"4k": 2}}},
        "model.pricing.multipliers.resolution: the input_schema has no field 'resolution'",
    ),
    "multiplier value not in the enum": (
        {"rule": "per_request", "multipliers": {"quality": {"hihg": 2}}},
        "model.pricing.multipliers.quality: 'hihg' is not one of the field's values",
    ),
    "negative multiplier": (
        {"rule": "per_request", "multipliers": {"style": {"x": -1}}},
        "model.pricing.multipliers.style.x must be a number >= 0",
    ),
    "ranges without an open end": (
        {"rule": "per_request", "multipliers": {"length": [{"up_to": 5, "multiplier": 1}]}},
        "the last range must have no up_to",
    ),
    "ranges out of order": (
        {
            "rule": "per_request",
            "multipliers": {
                "length": [
                    {"up_to": 5, "multiplier": 1},
                    {"up_to": 5, "multiplier": 2},
                    {"multiplier": 3},
                ]
            },
        },
        "model.pricing.multipliers.length[1].up_to must be above the range before it",
    ),
    "ranges on a text field": (
        {"rule": "per_request", "multipliers": {"style": [{"multiplier": 2}]}},
        "ranges need a number field",
    ),
    "discount on a field the schema lacks": (
        {"rule": "per_item", "price": 1, "discount": {"field": "n"}},
        "model.pricing.discount.field: the input_schema has no field 'n'",
    ),
    "discount cap above 100": (
        {"rule": "per_item", "price": 1, "discount": {"cap_percent": 150}},
        "model.pricing.discount.cap_percent must be at most 100",
    ),
    "not a table": ("per_request", "model.pricing must be a table"),
}


@pytest.mark.parametrize("case", sorted(BAD_TABLES))
def test_bad_tables_raise_pricing_error_naming_the_field(case: str) -> None:
    table, expected = BAD_TABLES[case]
    with pytest.raises(PricingError) as info:
        parse_pricing(table, SCHEMA)
    assert expected in str(info.value)
