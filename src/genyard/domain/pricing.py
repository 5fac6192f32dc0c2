"""Pricing: a model's prices as data, and one pure function that prices a call.

A catalog entry's ``[model.pricing]`` table (docs/catalog.md, "Pricing") is parsed once,
at load, by :func:`parse_pricing` into a :class:`Pricing`; prices become integer
micro-credits there (1 credit = ``MICRO`` = 1_000_000 micro-credits).

- :func:`estimate` prices a call before it runs, at its worst case (``max_tokens``, the
  stated or the longest duration): this is what a hold takes and what ``/estimate`` shows.
- :func:`charge` prices it afterwards from the units the provider reported in ``usage``,
  and never exceeds the estimate (nor ``held``): a larger result is clamped and the
  :class:`Quote` says so.

Both count units and hand them to ``_quote``, so the same units always cost the same.
Arithmetic is exact (fractions); the one rounding is at the end, up to a whole
micro-credit. Nothing here does I/O.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Literal

from genyard.errors import InvalidRequest

MICRO = 1_000_000
RULES = ("per_request", "per_item", "per_second", "per_token", "per_character")
BASES = ("input", "output")
ANY_VALUE = "*"  # a multiplier table's key for values it does not list

# fmt: off
_RULE_KEYS = {  # the keys each rule takes, besides rule, multipliers and discount
    "per_request": frozenset({"price"}),
    "per_item": frozenset({"price", "per", "count_fields"}),
    "per_second": frozenset({"price", "per", "basis", "duration_field", "max_seconds"}),
    "per_token": frozenset({
        "input_price", "output_price", "per", "input_field", "overhead_tokens",
        "max_input_tokens", "output_limit_field", "max_output_tokens",
    }),
    "per_character": frozenset({"price", "per", "input_field"}),
}
_OPTIONAL = (  # Pricing fields that are None unless their rule sets them
    "count_fields", "basis", "duration_field", "max_seconds", "input_field", "overhead_tokens",
    "max_input_tokens", "output_limit_field", "max_output_tokens",
)
# fmt: on
_COMMON_KEYS = frozenset({"rule", "multipliers", "discount"})
_MISSING: Any = object()


class PricingError(ValueError):
    """A ``[model.pricing]`` table is malformed; the message names the field."""


@dataclass(frozen=True, slots=True)
class ValueMultiplier:
    """Multiplier by an input field's value; values not listed get ``otherwise``."""

    field: str
    values: dict[str, Fraction]
    otherwise: Fraction = Fraction(1)

    def pick(self, value: Any) -> Fraction:
        key = _key(value) if value is not _MISSING else None
        return self.values.get(key, self.otherwise) if key is not None else self.otherwise

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: _plain(v) for k, v in self.values.items()}
        if self.otherwise != 1:
            out[ANY_VALUE] = _plain(self.otherwise)
        return out


@dataclass(frozen=True, slots=True)
class RangeMultiplier:
    """Multiplier by a number: the first range whose ``up_to`` (inclusive) holds it.

    The last range has no bound (``None``), so every number has a multiplier; a value
    that is not a number (or is absent) gets 1.
    """

    field: str
    ranges: tuple[tuple[Fraction | None, Fraction], ...]

    def pick(self, value: Any) -> Fraction:
        number = _number(value)
        if number is None:
            return Fraction(1)
        return next(m for up_to, m in self.ranges if up_to is None or number <= up_to)

    def to_dict(self) -> list[dict[str, Any]]:
        return [
            {"multiplier": _plain(m)}
            if up_to is None
            else {"up_to": _plain(up_to), "multiplier": _plain(m)}
            for up_to, m in self.ranges
        ]


Multiplier = ValueMultiplier | RangeMultiplier


@dataclass(frozen=True, slots=True)
class Discount:
    """The generators' bulk discount: ``count`` percent off, capped at ``cap_percent``.

    Counts below ``min_count`` get nothing: by default a single item pays full price
    (``min_count = 1`` is the seed's formula to the letter: one item, 1 percent off).
    """

    field: str = "count"
    cap_percent: int = 10
    min_count: int = 2

    def percent(self, count: int) -> int:
        return 0 if count < self.min_count else min(count, self.cap_percent)


@dataclass(frozen=True, slots=True)
class Pricing:
    """A parsed ``[model.pricing]`` table. Prices are micro-credits per ``per`` units.

    Fields a rule does not use are ``None``. ``defaults`` holds the input_schema
    defaults of the fields the table reads, so pricing a raw input (before defaults
    are filled in) gives the same answer.
    """

    rule: str
    price: int = 0
    per: int = 1
    input_price: int | None = None
    output_price: int | None = None
    count_fields: tuple[str, ...] | None = None
    basis: str | None = None
    duration_field: str | None = None
    max_seconds: Fraction | None = None
    input_field: str | None = None
    overhead_tokens: int | None = None
    max_input_tokens: int | None = None
    output_limit_field: str | None = None
    max_output_tokens: int | None = None
    multipliers: tuple[Multiplier, ...] = ()
    discount: Discount | None = None
    defaults: dict[str, Any] = field(default_factory=dict)

    def unit_prices(self) -> tuple[tuple[str, int], ...]:
        """(unit, micro-credits per ``per`` units) for each unit this rule counts."""
        if self.rule == "per_token":
            return (
                ("input_tokens", self.input_price or 0),
                ("output_tokens", self.output_price or 0),
            )
        return ((_UNIT[self.rule], self.price),)

    def to_dict(self) -> dict[str, Any]:
        """The table as the catalog file would say it, prices in credits."""
        out: dict[str, Any] = {"rule": self.rule}
        if self.rule == "per_token":
            out["input_price"] = credits(self.input_price or 0)
            out["output_price"] = credits(self.output_price or 0)
        else:
            out["price"] = credits(self.price)
        if self.rule != "per_request":
            out["per"] = self.per
        for name in _OPTIONAL:
            value = getattr(self, name)
            if value is not None:
                if isinstance(value, tuple):
                    value = list(value)
                out[name] = _plain(value) if isinstance(value, Fraction) else value
        if self.multipliers:
            out["multipliers"] = {m.field: m.to_dict() for m in self.multipliers}
        if self.discount is not None:
            out["discount"] = {
                "field": self.discount.field,
                "cap_percent": self.discount.cap_percent,
                "min_count": self.discount.min_count,
            }
        return out


FREE = Pricing(rule="per_request")
"""The pricing of an entry without a ``[model.pricing]`` table: nothing."""

_UNIT = {
    "per_request": "requests",
    "per_item": "items",
    "per_second": "seconds",
    "per_character": "characters",
}


@dataclass(frozen=True, slots=True)
class Quote:
    """The price of one call. Amounts are micro-credits.

    ``total`` is what is held (estimate) or charged (charge); ``subtotal`` is before the
    discount (``subtotal - discount`` is the total unless ``clamped``). ``units`` are the
    units counted (``requests``, ``items``, ``seconds``, ``input_tokens`` and
    ``output_tokens``, ``characters``), ``multipliers`` the factor each priced field
    gave. A charge is ``clamped`` when its own price (``unclamped_total``) exceeded the
    estimate or the hold; ``unreported`` names the units the provider's usage did not
    report, which were charged at the estimate's count.
    """

    kind: Literal["estimate", "charge"]
    rule: str
    total: int
    subtotal: int
    discount: int
    discount_percent: int
    units: dict[str, Fraction]
    multipliers: dict[str, Fraction]
    unclamped_total: int
    clamped: bool = False
    unreported: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: credits as decimal numbers, ``total_micro`` as the exact integer."""
        return {
            "kind": self.kind,
            "rule": self.rule,
            "total": credits(self.total),
            "total_micro": self.total,
            "subtotal": credits(self.subtotal),
            "discount": credits(self.discount),
            "discount_percent": self.discount_percent,
            "units": {k: _plain(v) for k, v in self.units.items()},
            "multipliers": {k: _plain(v) for k, v in self.multipliers.items()},
            "clamped": self.clamped,
            "unclamped_total": credits(self.unclamped_total),
            "unreported": list(self.unreported),
        }


def credits(micro: int) -> float:
    """Micro-credits as a decimal number of credits (exact as written below 10**9 credits)."""
    return micro / MICRO


def estimate(pricing: Pricing, input: Mapping[str, Any]) -> Quote:
    """The worst-case price of a call with this input: what a hold takes.

    Raises :class:`InvalidRequest` (naming ``input.<field>``) for a value the pricing
    cannot count, e.g. a ``count`` that is not a whole number.
    """
    if _is_flat(pricing):
        return _flat_quote(pricing.price, pricing.per, "estimate")
    return _quote(pricing, input, _estimate_units(pricing, input), "estimate")


def _is_flat(pricing: Pricing) -> bool:
    """A price that no input changes: per request, no multipliers, no discount."""
    return pricing.rule == "per_request" and not pricing.multipliers and pricing.discount is None


@functools.cache
def _flat_quote(price: int, per: int, kind: Literal["estimate", "charge"]) -> Quote:
    """The quote of a flat price, computed once (the hot path prices every call twice).
    Shared between calls: never change it (``replace`` makes a changed copy)."""
    flat = Pricing(rule="per_request", price=price, per=per)
    return _quote(flat, {}, {"requests": Fraction(1)}, kind)


def charge(
    pricing: Pricing,
    input: Mapping[str, Any],
    usage: Mapping[str, Any] | None,
    *,
    held: int | None = None,
) -> Quote:
    """The price of a finished call from the provider's ``usage``; never above the estimate.

    ``usage`` keys are the unit names (``items``, ``seconds``, ``input_tokens``,
    ``output_tokens``, ``characters``); a unit it lacks (or gives as something other
    than a non-negative number) is charged at the estimate's count. ``held``, when
    given, is a further ceiling (the hold actually taken, should the catalog have
    changed since).
    """
    worst = estimate(pricing, input)
    if _is_flat(pricing):
        quote = _flat_quote(pricing.price, pricing.per, "charge")
    else:
        units: dict[str, Fraction] = {}
        unreported: list[str] = []
        for unit, counted in worst.units.items():
            reported = None if unit == "requests" or usage is None else _number(usage.get(unit))
            if reported is None or reported < 0:
                units[unit] = counted
                if unit != "requests":
                    unreported.append(unit)
            else:
                units[unit] = reported
        quote = replace(_quote(pricing, input, units, "charge"), unreported=tuple(unreported))
    ceiling = worst.total if held is None else max(0, min(worst.total, held))
    if quote.total <= ceiling:
        return quote
    return replace(quote, total=ceiling, clamped=True)


def _quote(
    pricing: Pricing,
    input: Mapping[str, Any],
    units: dict[str, Fraction],
    kind: Literal["estimate", "charge"],
) -> Quote:
    multipliers = {m.field: m.pick(_value(pricing, input, m.field)) for m in pricing.multipliers}
    exact = sum((units[unit] * price for unit, price in pricing.unit_prices()), Fraction(0))
    exact = exact / pricing.per * math.prod(multipliers.values(), start=Fraction(1))
    percent = 0
    if pricing.discount is not None:
        percent = pricing.discount.percent(_count(pricing, input, pricing.discount.field))
    subtotal = math.ceil(exact)
    total = math.ceil(exact * (100 - percent) / 100)
    return Quote(
        kind=kind,
        rule=pricing.rule,
        total=total,
        subtotal=subtotal,
        discount=subtotal - total,
        discount_percent=percent,
        units=units,
        multipliers=multipliers,
        unclamped_total=total,
    )


def _estimate_units(p: Pricing, input: Mapping[str, Any]) -> dict[str, Fraction]:
    if p.rule == "per_request":
        return {"requests": Fraction(1)}
    if p.rule == "per_item":
        return {"items": Fraction(math.prod(_count(p, input, f) for f in p.count_fields or ()))}
    if p.rule == "per_second":
        return {"seconds": _seconds(p, input)}
    if p.rule == "per_character":
        text = _value(p, input, p.input_field) if p.input_field else _MISSING
        return {"characters": Fraction(sum(len(s) for s in _strings(text)))}
    return _tokens(p, input)


def _seconds(p: Pricing, input: Mapping[str, Any]) -> Fraction:
    stated = _value(p, input, p.duration_field) if p.duration_field else _MISSING
    if stated is _MISSING:
        if p.max_seconds is None:
            raise InvalidRequest(
                f"input.{p.duration_field} is required to price this model",
                {"field": f"input.{p.duration_field}"},
            )
        return p.max_seconds
    seconds = _number(stated)
    if seconds is None or seconds < 0:
        raise InvalidRequest(
            f"input.{p.duration_field} must be a number of seconds, got {stated!r}",
            {"field": f"input.{p.duration_field}"},
        )
    return seconds if p.max_seconds is None else min(seconds, p.max_seconds)


def _tokens(p: Pricing, input: Mapping[str, Any]) -> dict[str, Fraction]:
    # A tokenizer makes at most one token per UTF-8 byte, plus its own special and
    # prefix tokens (``overhead_tokens`` per text): a bound, not a guess.
    text = _value(p, input, p.input_field) if p.input_field else _MISSING
    overhead = p.overhead_tokens or 0
    tokens_in = sum(len(s.encode("utf-8")) + overhead for s in _strings(text))
    if p.max_input_tokens is not None:
        tokens_in = p.max_input_tokens if text is _MISSING else min(tokens_in, p.max_input_tokens)
    tokens_out = p.max_output_tokens or 0
    if p.output_limit_field is not None:
        limit = _value(p, input, p.output_limit_field)
        if limit is not _MISSING:
            stated = _count(p, input, p.output_limit_field)
            tokens_out = stated if p.max_output_tokens is None else min(stated, tokens_out)
    return {"input_tokens": Fraction(tokens_in), "output_tokens": Fraction(tokens_out)}


def _value(p: Pricing, input: Mapping[str, Any], name: str) -> Any:
    return input[name] if name in input else p.defaults.get(name, _MISSING)


def _count(p: Pricing, input: Mapping[str, Any], name: str) -> int:
    """A count-like field: a whole number, or a list (its length); absent counts 1."""
    value = _value(p, input, name)
    if value is _MISSING:
        return 1
    if isinstance(value, list):
        return len(value)
    number = _number(value)
    if number is None or number < 0 or number.denominator != 1:
        raise InvalidRequest(
            f"input.{name} must be a whole number, got {value!r}", {"field": f"input.{name}"}
        )
    return int(number)


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON value (a text, a list of texts, chat messages)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def _number(value: Any) -> Fraction | None:
    """A JSON or TOML number exactly (a float by its shortest decimal form), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int):
        return Fraction(value)
    return Fraction(repr(value)) if math.isfinite(value) else None


def _key(value: Any) -> str | None:
    """How a multiplier table names an input value: ``high``, ``2``, ``true``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    number = _number(value)
    if number is None:
        return None
    return str(number.numerator) if number.denominator == 1 else repr(value)


def _plain(value: Fraction) -> int | float:
    return value.numerator if value.denominator == 1 else float(value)


# Parsing -------------------------------------------------------------------------------


def parse_pricing(table: Any, input_schema: Mapping[str, Any]) -> Pricing:
    """Check a ``[model.pricing]`` table against the entry's input_schema and parse it.

    Raises :class:`PricingError` naming the field (``model.pricing.<field>``).
    """
    return _Parser(input_schema).parse(table)


class _Parser:
    def __init__(self, input_schema: Mapping[str, Any]) -> None:
        properties = input_schema.get("properties", {})
        self.properties: dict[str, Any] = properties if isinstance(properties, dict) else {}
        self.required = set(input_schema.get("required", []))
        self.defaults: dict[str, Any] = {}

    def parse(self, table: Any) -> Pricing:
        if not isinstance(table, dict):
            raise PricingError("model.pricing must be a table")
        rule = table.get("rule")
        if rule is None:
            raise PricingError(f"model.pricing.rule is required (one of {', '.join(RULES)})")
        if rule not in RULES:
            raise PricingError(f"model.pricing.rule {rule!r} is not one of {', '.join(RULES)}")
        unknown = set(table) - _COMMON_KEYS - _RULE_KEYS[rule]
        if unknown:
            raise PricingError(
                f"model.pricing: unknown field(s) {', '.join(sorted(unknown))} for rule {rule}"
            )
        fields: dict[str, Any] = {"rule": rule, "per": self.positive_int(table, "per", 1)}
        if rule == "per_token":
            fields.update(self.per_token(table))
        else:
            fields["price"] = _micro(table.get("price", 0), "model.pricing.price")
        if rule == "per_item":
            fields["count_fields"] = self.field_list(table, "count_fields")
        elif rule == "per_second":
            fields.update(self.per_second(table))
        elif rule == "per_character":
            fields["input_field"] = self.field(table, "input_field", required=True)
        fields["multipliers"] = self.multipliers(table.get("multipliers", {}))
        if "discount" in table:
            fields["discount"] = self.discount(table["discount"])
        return Pricing(**fields, defaults=self.defaults)

    def per_second(self, table: dict[str, Any]) -> dict[str, Any]:
        basis = table.get("basis")
        if basis not in BASES:
            raise PricingError(
                f"model.pricing.basis must be 'input' or 'output' (which seconds), got {basis!r}"
            )
        duration_field = self.field(table, "duration_field")
        max_seconds = None
        if "max_seconds" in table:
            max_seconds = _number(table["max_seconds"])
            if max_seconds is None or max_seconds <= 0:
                raise PricingError("model.pricing.max_seconds must be a positive number")
        if max_seconds is None and not self.always_given(duration_field):
            raise PricingError(
                "model.pricing.max_seconds is required: without it a call that states no "
                "duration (duration_field absent, optional or without a default) has no worst case"
            )
        return {"basis": basis, "duration_field": duration_field, "max_seconds": max_seconds}

    def per_token(self, table: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "input_price": _micro(table.get("input_price", 0), "model.pricing.input_price"),
            "output_price": _micro(table.get("output_price", 0), "model.pricing.output_price"),
            "input_field": self.field(table, "input_field"),
            "overhead_tokens": self.count(table, "overhead_tokens", 0),
            "max_input_tokens": self.positive_int(table, "max_input_tokens", None),
            "output_limit_field": self.field(table, "output_limit_field"),
            "max_output_tokens": self.positive_int(table, "max_output_tokens", None),
        }
        if out["input_price"] and out["input_field"] is None and out["max_input_tokens"] is None:
            raise PricingError(
                "model.pricing.input_field (or max_input_tokens) is required to bound input tokens"
            )
        if (
            out["output_price"]
            and out["max_output_tokens"] is None
            and not self.always_given(out["output_limit_field"])
        ):
            raise PricingError(
                "model.pricing.max_output_tokens is required to bound output tokens "
                "(output_limit_field is absent, optional or without a default)"
            )
        return out

    def always_given(self, name: str | None) -> bool:
        return name is not None and (name in self.required or name in self.defaults)

    def field(self, table: dict[str, Any], key: str, *, required: bool = False) -> str | None:
        if key not in table:
            if required:
                raise PricingError(f"model.pricing.{key} is required")
            return None
        return self.input_field(table[key], f"model.pricing.{key}")

    def input_field(self, name: Any, where: str) -> str:
        """An input field the table reads: it must be a top-level input_schema property."""
        if not isinstance(name, str) or name not in self.properties:
            raise PricingError(f"{where}: the input_schema has no field {name!r}")
        prop = self.properties[name]
        if isinstance(prop, dict) and "default" in prop:
            self.defaults[name] = prop["default"]
        return name

    def field_list(self, table: dict[str, Any], key: str) -> tuple[str, ...]:
        names = table.get(key, [])
        if not isinstance(names, list):
            raise PricingError(f"model.pricing.{key} must be a list of input field names")
        return tuple(self.input_field(name, f"model.pricing.{key}") for name in names)

    def multipliers(self, table: Any) -> tuple[Multiplier, ...]:
        if not isinstance(table, dict):
            raise PricingError("model.pricing.multipliers must be a table")
        out: list[Multiplier] = []
        for name, spec in table.items():
            where = f"model.pricing.multipliers.{name}"
            self.input_field(name, where)
            if isinstance(spec, dict):
                out.append(self.value_multiplier(name, spec, where))
            elif isinstance(spec, list):
                out.append(self.range_multiplier(name, spec, where))
            else:
                raise PricingError(f"{where} must be a table of values or a list of ranges")
        return tuple(out)

    def value_multiplier(self, name: str, spec: dict[str, Any], where: str) -> ValueMultiplier:
        prop = self.properties[name]
        enum = prop.get("enum") if isinstance(prop, dict) else None
        known = {_key(v) for v in enum} if isinstance(enum, list) else None
        values: dict[str, Fraction] = {}
        for key, raw in spec.items():
            if known is not None and key != ANY_VALUE and key not in known:
                raise PricingError(f"{where}: {key!r} is not one of the field's values")
            values[key] = _factor(raw, f"{where}.{key}")
        otherwise = values.pop(ANY_VALUE, Fraction(1))
        return ValueMultiplier(name, values, otherwise)

    def range_multiplier(self, name: str, spec: list[Any], where: str) -> RangeMultiplier:
        prop = self.properties[name]
        declared = prop.get("type") if isinstance(prop, dict) else None
        if declared is not None and declared not in ("number", "integer"):
            raise PricingError(f"{where}: ranges need a number field, {name!r} is {declared!r}")
        ranges: list[tuple[Fraction | None, Fraction]] = []
        for i, item in enumerate(spec):
            here = f"{where}[{i}]"
            if not isinstance(item, dict) or not set(item) <= {"up_to", "multiplier"}:
                raise PricingError(f"{here} must be {{ up_to = <number>, multiplier = <number> }}")
            if "multiplier" not in item:
                raise PricingError(f"{here}.multiplier is required")
            up_to = None
            if "up_to" in item:
                up_to = _number(item["up_to"])
                if up_to is None:
                    raise PricingError(f"{here}.up_to must be a number")
                if ranges and (ranges[-1][0] is None or up_to <= ranges[-1][0]):
                    raise PricingError(f"{here}.up_to must be above the range before it")
            elif i != len(spec) - 1:
                raise PricingError(f"{here}: only the last range may leave out up_to")
            ranges.append((up_to, _factor(item["multiplier"], f"{here}.multiplier")))
        if not ranges or ranges[-1][0] is not None:
            raise PricingError(f"{where}: the last range must have no up_to (it takes the rest)")
        return RangeMultiplier(name, tuple(ranges))

    def discount(self, table: Any) -> Discount:
        where = "model.pricing.discount"
        if not isinstance(table, dict) or not set(table) <= {"field", "cap_percent", "min_count"}:
            raise PricingError(f"{where} takes field, cap_percent and min_count")
        name = self.input_field(table.get("field", "count"), f"{where}.field")
        cap = self.count(table, "cap_percent", 10, where=where)
        if cap > 100:
            raise PricingError(f"{where}.cap_percent must be at most 100")
        return Discount(name, cap, self.count(table, "min_count", 2, where=where))

    def count(
        self, table: dict[str, Any], key: str, default: int, where: str = "model.pricing"
    ) -> int:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise PricingError(f"{where}.{key} must be a whole number >= 0")
        return value

    def positive_int(self, table: dict[str, Any], key: str, default: int | None) -> int | None:
        value = table.get(key, default)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise PricingError(f"model.pricing.{key} must be a whole number >= 1")
        return value


def _micro(value: Any, where: str) -> int:
    amount = _number(value)
    if amount is None:
        raise PricingError(f"{where} must be a number of credits, got {value!r}")
    if amount < 0:
        raise PricingError(f"{where} must not be negative, got {value!r}")
    micro = amount * MICRO
    if micro.denominator != 1:
        raise PricingError(
            f"{where} = {value!r} is finer than a micro-credit (6 decimals): "
            "price more units at once with `per`"
        )
    return int(micro)


def _factor(value: Any, where: str) -> Fraction:
    factor = _number(value)
    if factor is None or factor < 0:
        raise PricingError(f"{where} must be a number >= 0, got {value!r}")
    return factor
