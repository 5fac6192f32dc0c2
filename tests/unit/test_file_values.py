"""domain/files: the x-genyard-file marker, data URIs, media types and value walking."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from genyard.domain.files import (
    DATA_URI_DEFAULT_TYPE,
    FileField,
    FileSpec,
    InvalidFile,
    accepts,
    field_values,
    file_fields,
    map_leaves,
    marker_errors,
    parse_data_uri,
    type_from_name,
)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- data URIs -----------------------------------------------------------------------------


def test_a_base64_data_uri_decodes_to_its_bytes_and_type() -> None:
    parsed = parse_data_uri(f"data:image/png;base64,{b64(PNG)}")
    assert (parsed.content_type, parsed.data) == ("image/png", PNG)
    # parameters are kept, case of the prefix and base64 marker does not matter
    parsed = parse_data_uri(f"DATA:text/plain;charset=utf-8;BASE64,{b64('héllo'.encode())}")
    assert (parsed.content_type, parsed.data) == ("text/plain;charset=utf-8", "héllo".encode())
    # line breaks inside the base64 are allowed
    wrapped = b64(PNG)
    wrapped = wrapped[:40] + "\n" + wrapped[40:]
    assert parse_data_uri(f"data:image/png;base64,{wrapped}").data == PNG


def test_a_plain_data_uri_is_percent_decoded_and_defaults_to_text() -> None:
    assert parse_data_uri("data:,hello%20world").data == b"hello world"
    assert parse_data_uri("data:,x").content_type == DATA_URI_DEFAULT_TYPE
    assert parse_data_uri("data:;base64," + b64(b"abc")).content_type == DATA_URI_DEFAULT_TYPE
    assert parse_data_uri("data:text/csv,a%2Cb").data == b"a,b"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("data:image/png;base64", "comma"),
        ("data:image/png;base64,@@@@", "base64"),
        ("data:image/png;base64,abc", "base64"),  # bad padding
        ("data:png;base64,AAAA", "not 'type/subtype'"),
    ],
)
def test_malformed_data_uris_are_refused(value: str, reason: str) -> None:
    with pytest.raises(InvalidFile, match=reason):
        parse_data_uri(value)


def test_max_bytes_is_checked_before_decoding_where_it_can_be() -> None:
    assert len(parse_data_uri(f"data:image/png;base64,{b64(PNG)}", max_bytes=len(PNG)).data)
    for size in (len(PNG), len(PNG) + 1, len(PNG) + 2):  # each padding length
        data = bytes(size)
        with pytest.raises(InvalidFile, match=f"is {size} bytes; at most {size - 1}$"):
            parse_data_uri(f"data:image/png;base64,{b64(data)}", max_bytes=size - 1)
    # past the limit, even malformed base64 is refused for its size, without decoding
    with pytest.raises(InvalidFile, match="is 300 bytes; at most 10"):
        parse_data_uri("data:image/png;base64," + "@" * 400, max_bytes=10)
    with pytest.raises(InvalidFile, match="is 5 bytes; at most 4"):
        parse_data_uri("data:,hello", max_bytes=4)


# -- media types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "content_type", "expected"),
    [
        (("*/*",), "application/pdf", True),
        (("*/*",), None, True),
        (("image/*",), "image/png", True),
        (("image/*",), "IMAGE/PNG; charset=binary", True),
        (("image/*",), "imagex/png", False),
        (("image/*",), "text/html", False),
        (("image/png",), "image/png", True),
        (("image/png",), "image/jpeg", False),
        (("image/png", "audio/*"), "audio/wav", True),
        (("image/png",), None, False),
        (("image/png",), "", False),
    ],
)
def test_accept_matches_types_and_wildcards(
    accept: tuple[str, ...], content_type: str | None, expected: bool
) -> None:
    assert accepts(accept, content_type) is expected


def test_types_from_file_names_do_not_depend_on_the_host() -> None:
    assert type_from_name("a.png") == "image/png"
    assert type_from_name("photo.JPG") == "image/jpeg"
    assert type_from_name("x.webp") == "image/webp"
    assert type_from_name("noextension") is None
    assert type_from_name(None) is None


# -- the marker ----------------------------------------------------------------------------


def uri(**marker: Any) -> dict[str, Any]:
    return {"type": "string", "format": "uri", "x-genyard-file": marker}


SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "image": uri(accept=["image/png"], max_bytes=100),
        "images": {"type": "array", "items": uri(accept=["image/*", "*/*"])},
        "any": uri(),
        "prompt": {"type": "string"},
        "urls": {"type": "array", "items": {"type": "string", "format": "uri"}},
    },
}


def test_file_fields_are_found_with_their_specs() -> None:
    assert marker_errors(SCHEMA) == []
    assert file_fields(SCHEMA) == {
        "image": FileField("image", FileSpec(("image/png",), 100)),
        "images": FileField("images", FileSpec(("image/*", "*/*"), None), many=True),
        "any": FileField("any", FileSpec(("*/*",), None)),
    }
    assert file_fields({"type": "object"}) == {}


def test_field_values_of_single_and_list_fields() -> None:
    fields = file_fields(SCHEMA)
    value = {"image": "a", "images": ["b", "c"], "any": None}
    assert list(field_values(fields["image"], value)) == [(None, "a")]
    assert list(field_values(fields["images"], value)) == [(0, "b"), (1, "c")]
    assert list(field_values(fields["any"], value)) == []
    assert list(field_values(fields["images"], {"images": "not a list"})) == []


@pytest.mark.parametrize(
    ("prop", "expected"),
    [
        (uri(accept="image/png"), "accept must be a non-empty list"),
        (uri(accept=[]), "accept must be a non-empty list"),
        (uri(accept=["png"]), "'png' is not a media type"),
        (uri(accept=["image/png; q=1"]), "is not a media type"),
        (uri(max_bytes=0), "max_bytes must be a positive integer"),
        (uri(max_bytes=1.5), "max_bytes must be a positive integer"),
        (uri(max_bytes=True), "max_bytes must be a positive integer"),
        (uri(size=3), "unknown key 'size'"),
        ({"type": "string", "x-genyard-file": {}}, "must be {type = 'string', format = 'uri'}"),
        ({"type": "integer", "x-genyard-file": {}}, "must be {type = 'string', format = 'uri'}"),
        ({"type": "array", "items": {"type": "string"}, "x-genyard-file": {}}, "must be {type"),
        ({"type": "array", "items": {"type": "integer", "x-genyard-file": {}}}, "items of a file"),
        ({"type": "string", "format": "uri", "x-genyard-file": "yes"}, "must be a table"),
        ({"type": "object", "items": uri()}, "'items' carries the marker only in a type 'array'"),
        (
            {"type": "object", "properties": {"deep": uri()}},
            "belongs on a top-level property",
        ),
        ({"anyOf": [uri()]}, "belongs on a top-level property"),
    ],
)
def test_bad_markers_are_named_with_their_place(prop: dict[str, Any], expected: str) -> None:
    errors = marker_errors({"type": "object", "properties": {"field": prop}})
    assert errors, prop
    assert all(e.startswith("input_schema.properties.field") for e in errors), errors
    assert any(expected in e for e in errors), errors


def test_a_marker_outside_properties_is_named() -> None:
    errors = marker_errors({"type": "object", "$defs": {"f": uri()}})
    assert errors == [
        "input_schema.$defs.f.x-genyard-file: the marker belongs on a top-level property "
        "(properties.<name>) or on its items (properties.<name>.items)"
    ]


# -- walking values ------------------------------------------------------------------------


def test_map_leaves_reaches_lists_tuples_and_dict_values_but_not_keys() -> None:
    value = {"a": ["x", 1, {"b": ("y", None)}], "x": 2.5, "c": True}
    out = map_leaves(value, lambda v: v.upper() if isinstance(v, str) else v)
    assert out == {"a": ["X", 1, {"b": ["Y", None]}], "x": 2.5, "c": True}
    assert value == {"a": ["x", 1, {"b": ("y", None)}], "x": 2.5, "c": True}  # not mutated
    obj = object()
    assert map_leaves([obj], lambda v: "found" if v is obj else v) == ["found"]


def test_map_leaves_copies_nothing_when_nothing_changes() -> None:
    numbers = [[0.1] * 384 for _ in range(4)]
    value = {"embeddings": numbers, "model": "e5"}
    seen: list[Any] = []
    out = map_leaves(value, lambda v: seen.append(v) or v)
    assert out is value and out["embeddings"] is numbers
    assert seen == ["e5"]  # numbers are never handed to the function
