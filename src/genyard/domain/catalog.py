"""The model catalog: models are data (TOML files), not code.

A file holds one ``[model]`` table (see ``src/genyard/catalog/*.toml`` and
docs/catalog.md). The bundled directory is read first, then ``GENYARD_CATALOG_DIR``,
whose entries replace bundled ones with the same id. ``defaults.toml`` names the
default model per type and, optionally, per language; ``aliases.toml`` maps other
platforms' model names (``topaz-video-upscale``) to the catalog model that runs them,
for the faces that speak those platforms' dialects. ``[model.pricing]`` is checked
and parsed here, once (domain/pricing.py); an entry without one is free.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from genyard.domain.files import FileField, file_fields, marker_errors
from genyard.domain.pricing import FREE, Pricing, PricingError, parse_pricing

BUNDLED_CATALOG_DIR = Path(__file__).resolve().parent.parent / "catalog"

MODEL_TYPES = frozenset(
    {
        "text",
        "embedding",
        "rerank",
        "image",
        "video",
        "speech",
        "stt",
        "voice-clone",
        "ocr",
        "music",
        "upscale",
        "background-removal",
        "diagnostic",
    }
)


_MODEL_KEYS = frozenset(
    {
        "id", "type", "provider", "input_schema", "description", "languages", "settings",
        "capabilities", "pricing", "limits", "example_input", "diagnostic", "expected_seconds",
    }
)  # fmt: skip


class CatalogError(ValueError):
    """A catalog file is malformed; the message names the file and the field."""


@dataclass(frozen=True, slots=True)
class Alias:
    """Another platform's name for a model of this catalog (``aliases.toml``).

    ``description`` says plainly what runs under the name: an alias never passes a
    local model off as the vendor's."""

    name: str
    model: str
    description: str


def _parse_aliases(path: Path, data: dict[str, Any]) -> dict[str, Alias]:
    aliases: dict[str, Alias] = {}
    for name, table in data.items():
        where = f"{path}: [{name!r}]"
        if not isinstance(table, dict):
            raise CatalogError(f"{where} must be a table with model and description")
        unknown = set(table) - {"model", "description"}
        if unknown:
            raise CatalogError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        model, description = table.get("model"), table.get("description")
        if not isinstance(model, str) or model.count("/") != 1:
            raise CatalogError(f"{where}.model must be a model id 'owner/name'")
        if not isinstance(description, str) or not description.strip():
            raise CatalogError(f"{where}.description is required: say what runs under the name")
        aliases[name] = Alias(name, model, description.strip())
    return aliases


@dataclass(frozen=True, slots=True)
class Limits:
    timeout: float = 300.0
    queue_timeout: float = 3600.0
    max_input_bytes: int = 1024 * 1024
    #: Jobs of this model running at once across all workers; the rest wait in the
    #: queue (never a 429). None: only the workers' slots limit it.
    max_running: int | None = None
    #: Resident memory one loaded instance takes, for the model memory budget
    #: (:mod:`genyard.providers.runtime`). None: counted as 0.
    memory_mb: int | None = None


@dataclass(frozen=True, slots=True)
class ModelEntry:
    id: str
    type: str
    provider: str
    input_schema: dict[str, Any]
    description: str = ""
    languages: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    capabilities: dict[str, Any] = field(default_factory=dict)
    pricing: Pricing = FREE
    limits: Limits = field(default_factory=Limits)
    example_input: dict[str, Any] = field(default_factory=dict)
    diagnostic: bool = False
    #: Seconds one run takes (per item where the pricing counts items): the time
    #: estimate until the model has a history (:mod:`genyard.domain.estimates`).
    expected_seconds: float | None = None
    #: The input's file fields by name (``x-genyard-file``, see :mod:`genyard.domain.files`).
    files: dict[str, FileField] = field(default_factory=dict)

    @property
    def owner(self) -> str:
        return self.id.split("/", 1)[0]


def _parse_entry(path: Path, data: dict[str, Any]) -> ModelEntry:
    model = data.get("model")
    if not isinstance(model, dict):
        raise CatalogError(f"{path}: missing [model] table")
    for key in ("id", "type", "provider", "input_schema"):
        if key not in model:
            raise CatalogError(f"{path}: model.{key} is required")
    model_id = str(model["id"])
    if model_id.count("/") != 1 or not all(model_id.split("/")):
        raise CatalogError(f"{path}: model.id must be 'owner/name', got {model_id!r}")
    if model["type"] not in MODEL_TYPES:
        raise CatalogError(
            f"{path}: model.type {model['type']!r} is not one of {sorted(MODEL_TYPES)}"
        )
    unknown = set(model) - _MODEL_KEYS
    if unknown:
        raise CatalogError(f"{path}: unknown model field(s) {', '.join(sorted(unknown))}")
    schema = model["input_schema"]
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise CatalogError(f"{path}: model.input_schema must be a JSON Schema of type object")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise CatalogError(
            f"{path}: model.input_schema is not valid JSON Schema: {exc.message}"
        ) from None
    problems = marker_errors(schema)
    if problems:
        raise CatalogError(f"{path}: model." + "; model.".join(problems))
    try:
        limits = Limits(**model.get("limits", {}))
    except TypeError as exc:
        raise CatalogError(f"{path}: model.limits: {exc}") from None
    for name in ("timeout", "queue_timeout", "max_input_bytes"):
        value = getattr(limits, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise CatalogError(f"{path}: model.limits.{name} must be a positive number")
    for name in ("max_running", "memory_mb"):
        value = getattr(limits, name)
        if value is not None and (type(value) is not int or value < 1):
            raise CatalogError(f"{path}: model.limits.{name} must be a positive integer")
    expected = model.get("expected_seconds")
    if expected is not None and (
        isinstance(expected, bool)
        or not isinstance(expected, int | float)
        or not 0 < expected < math.inf
    ):
        raise CatalogError(f"{path}: model.expected_seconds must be a positive number")
    pricing = FREE
    if "pricing" in model:
        try:
            pricing = parse_pricing(model["pricing"], schema)
        except PricingError as exc:
            raise CatalogError(f"{path}: {exc}") from None
    return ModelEntry(
        id=model_id,
        type=str(model["type"]),
        provider=str(model["provider"]),
        input_schema=schema,
        description=str(model.get("description", "")),
        languages=tuple(model.get("languages", ())),
        settings=dict(model.get("settings", {})),
        capabilities=dict(model.get("capabilities", {})),
        pricing=pricing,
        limits=limits,
        example_input=dict(model.get("example_input", {})),
        diagnostic=bool(model.get("diagnostic", False)),
        expected_seconds=float(expected) if expected is not None else None,
        files=file_fields(schema),
    )


class Catalog:
    """Models by id, and the default model per type and language."""

    def __init__(
        self,
        entries: Iterable[ModelEntry],
        defaults: dict[str, dict[str, str]],
        aliases: dict[str, Alias] | None = None,
    ):
        self._entries = {entry.id: entry for entry in entries}
        self._defaults = defaults
        self._aliases = dict(aliases or {})

    @classmethod
    def load(cls, dirs: Iterable[Path], *, include_diagnostic: bool = False) -> Catalog:
        entries: dict[str, ModelEntry] = {}
        defaults: dict[str, dict[str, str]] = {}
        aliases: dict[str, Alias] = {}
        for directory in dirs:
            if not directory.is_dir():
                raise CatalogError(f"catalog directory {directory} does not exist")
            for path in sorted(directory.glob("*.toml")):
                try:
                    with path.open("rb") as fh:
                        data = tomllib.load(fh)
                except tomllib.TOMLDecodeError as exc:
                    raise CatalogError(f"{path}: not valid TOML: {exc}") from None
                if path.name == "defaults.toml":
                    for model_type, table in data.items():
                        defaults.setdefault(model_type, {}).update(table)
                    continue
                if path.name == "aliases.toml":
                    aliases.update(_parse_aliases(path, data))
                    continue
                entry = _parse_entry(path, data)
                if entry.diagnostic and not include_diagnostic:
                    continue
                entries[entry.id] = entry
        return cls(entries.values(), defaults, aliases)

    def get(self, model_id: str) -> ModelEntry | None:
        return self._entries.get(model_id)

    def all(self, model_type: str | None = None) -> list[ModelEntry]:
        return [e for e in self._entries.values() if model_type in (None, e.type)]

    def defaults(self) -> dict[str, dict[str, str]]:
        """Default model ids by type, then by language (``default`` for any language)."""
        return {
            model_type: {lang: mid for lang, mid in table.items() if mid in self._entries}
            for model_type, table in self._defaults.items()
        }

    def default_for(self, model_type: str, language: str | None = None) -> ModelEntry | None:
        """The default model of a type, for a language when one is named."""
        table = self._defaults.get(model_type, {})
        model_id = (language and table.get(language)) or table.get("default")
        return self._entries.get(model_id) if model_id else None

    def alias(self, name: str) -> Alias | None:
        """The alias ``name``, when the model it names is in the catalog."""
        alias = self._aliases.get(name)
        return alias if alias is not None and alias.model in self._entries else None

    def aliases(self) -> list[Alias]:
        """Every alias whose model is in the catalog."""
        return [a for a in self._aliases.values() if a.model in self._entries]
