"""domain/validation.validate_input: every bad field named, defaults filled in."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from genyard.domain.catalog import BUNDLED_CATALOG_DIR
from genyard.domain.validation import FieldError, validate_input


def bundled_schema(file: str) -> dict[str, Any]:
    with (BUNDLED_CATALOG_DIR / file).open("rb") as fh:
        schema: dict[str, Any] = tomllib.load(fh)["model"]["input_schema"]
    return schema


DIAGNOSTIC = bundled_schema("diagnostic.toml")
E5 = bundled_schema("multilingual-e5-small.toml")


def fields(errors: list[FieldError]) -> list[str]:
    return [e.field for e in errors]


def test_valid_input_gets_its_defaults_filled_in() -> None:
    filled, errors = validate_input(DIAGNOSTIC, {"mode": "sleep"})
    assert errors == []
    assert filled == {"mode": "sleep", "seconds": 1, "steps": 5}
    filled, errors = validate_input(DIAGNOSTIC, {"prompt": "a cat"})
    assert errors == []
    assert filled == {"prompt": "a cat", "mode": "echo", "seconds": 1, "steps": 5}


def test_given_values_win_over_defaults_and_the_caller_input_is_not_mutated() -> None:
    given = {"mode": "progress", "seconds": 0.1}
    filled, errors = validate_input(DIAGNOSTIC, given)
    assert errors == []
    assert filled == {"mode": "progress", "seconds": 0.1, "steps": 5}
    assert given == {"mode": "progress", "seconds": 0.1}


def test_default_values_are_copies_not_shared_objects() -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"tags": {"type": "array", "default": []}},
    }
    first, _ = validate_input(schema, {})
    first["tags"].append("x")
    second, _ = validate_input(schema, {})
    assert second == {"tags": []}
    assert schema["properties"]["tags"]["default"] == []


def test_every_bad_field_is_named_at_once() -> None:
    _, errors = validate_input(
        DIAGNOSTIC, {"mode": "dance", "seconds": -1, "steps": 0, "message": 5}
    )
    assert sorted(fields(errors)) == [
        "input.message",
        "input.mode",
        "input.seconds",
        "input.steps",
    ]
    by_field = {e.field: e.message for e in errors}
    assert "'dance' is not one of" in by_field["input.mode"]
    assert "minimum of 0" in by_field["input.seconds"]
    assert "minimum of 1" in by_field["input.steps"]
    assert "not of type 'string'" in by_field["input.message"]


def test_missing_required_field_is_named() -> None:
    _, errors = validate_input(E5, {"task": "query"})
    assert [e.as_dict() for e in errors] == [{"field": "input.text", "message": "is required"}]


def test_unknown_fields_are_each_named() -> None:
    _, errors = validate_input(DIAGNOSTIC, {"mode": "echo", "zeta": 1, "alpha": 2})
    assert [e.as_dict() for e in errors] == [
        {"field": "input.alpha", "message": "is not a known field"},
        {"field": "input.zeta", "message": "is not a known field"},
    ]


def test_required_and_unknown_and_bad_values_together() -> None:
    _, errors = validate_input(E5, {"extra": True, "task": "ask"})
    assert sorted(fields(errors)) == ["input.extra", "input.task", "input.text"]


@pytest.mark.parametrize("value", [None, [], "text", 3])
def test_input_that_is_not_an_object(value: Any) -> None:
    filled, errors = validate_input(DIAGNOSTIC, value)
    assert filled == {}
    assert [e.as_dict() for e in errors] == [{"field": "input", "message": "must be an object"}]


def test_nested_paths_use_dots_and_indexes() -> None:
    schema = {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}},
                    "required": ["name"],
                },
            }
        },
    }
    _, errors = validate_input(schema, {"items": [{"name": "a"}, {"name": 3}, {}]})
    assert sorted(fields(errors)) == ["input.items[1].name", "input.items[2].name"]
    assert {e.field: e.message for e in errors}["input.items[2].name"] == "is required"


def test_prefix_names_the_root() -> None:
    _, errors = validate_input(E5, {}, prefix="body.input")
    assert fields(errors) == ["body.input.text"]


def test_e5_schema_accepts_a_text_or_a_list_and_refuses_empty_ones() -> None:
    for ok in ({"text": "안녕하세요"}, {"text": ["a", "b"], "task": "query"}):
        filled, errors = validate_input(E5, ok)
        assert errors == []
        assert filled["task"] == ok.get("task", "passage")
    bad_inputs: list[dict[str, Any]] = [
        {"text": ""},
        {"text": []},
        {"text": ["ok", ""]},
        {"text": "x", "task": "ask"},
    ]
    for bad in bad_inputs:
        _, errors = validate_input(E5, bad)
        assert len(errors) == 1, (bad, errors)
        assert errors[0].field in ("input.text", "input.task")
    _, errors = validate_input(E5, {"text": ["x"] * 129})
    assert fields(errors) == ["input.text"]
