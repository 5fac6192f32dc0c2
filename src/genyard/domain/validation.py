"""Prediction input against a model's JSON Schema: every bad field named, defaults applied."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def _path(prefix: str, parts: Any) -> str:
    out = prefix
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def validate_input(
    schema: dict[str, Any], value: Any, prefix: str = "input"
) -> tuple[dict[str, Any], list[FieldError]]:
    """Return the input with top-level defaults filled in, and every violation found."""
    if not isinstance(value, dict):
        return {}, [FieldError(prefix, "must be an object")]
    filled = copy.deepcopy(value)
    for name, prop in schema.get("properties", {}).items():
        if name not in filled and isinstance(prop, dict) and "default" in prop:
            filled[name] = copy.deepcopy(prop["default"])
    validator = Draft202012Validator(schema)
    errors: list[FieldError] = []
    for err in sorted(validator.iter_errors(filled), key=lambda e: list(e.absolute_path)):
        if err.validator == "additionalProperties":
            allowed = set(schema.get("properties", {}))
            for extra in sorted(set(err.instance) - allowed):
                errors.append(
                    FieldError(_path(prefix, [*err.absolute_path, extra]), "is not a known field")
                )
            continue
        if err.validator == "required":
            missing = err.message.split("'")[1] if "'" in err.message else err.message
            errors.append(FieldError(_path(prefix, [*err.absolute_path, missing]), "is required"))
            continue
        errors.append(FieldError(_path(prefix, err.absolute_path), err.message))
    return filled, errors
