"""File-typed inputs: the catalog marker, data URIs and media types. Pure: no I/O.

A top-level property of a model's ``input_schema`` is a file when it carries the marker
``"x-genyard-file": {"accept": [...], "max_bytes": N}`` (both keys optional) on a
``{"type": "string", "format": "uri"}``, or on the ``items`` of a ``{"type": "array"}``
(a list of files). ``accept`` lists media types, with ``type/*`` and ``*/*`` wildcards
(default: any); ``max_bytes`` caps one file (default: ``GENYARD_MAX_INPUT_FILE_BYTES``).
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

FILE_MARKER = "x-genyard-file"
ANY_TYPE = "*/*"
GENERIC_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})
#: RFC 2397: a data URI without a media type means this one.
DATA_URI_DEFAULT_TYPE = "text/plain;charset=US-ASCII"
_MEDIA_RANGE = re.compile(r"^(\*/\*|[a-z0-9][a-z0-9!#$&^_.+-]*/(\*|[a-z0-9][a-z0-9!#$&^_.+-]*))$")
_DATA_URI = re.compile(r"^data:(?P<meta>[^,]*),(?P<data>.*)$", re.S | re.I)
_MARKER_KEYS = frozenset({"accept", "max_bytes"})

# The standard library's own table (never the machine's /etc/mime.types, so results do
# not depend on the host), plus common media types it lacks in Python 3.11.
_TYPES = mimetypes.MimeTypes()
for _type, _ext in (
    ("image/webp", ".webp"),
    ("image/avif", ".avif"),
    ("image/heic", ".heic"),
    ("audio/flac", ".flac"),
    ("audio/mp4", ".m4a"),
    ("audio/ogg", ".ogg"),
    ("audio/ogg", ".opus"),
    ("video/webm", ".webm"),
    ("video/x-matroska", ".mkv"),
):
    _TYPES.add_type(_type, _ext)


class InvalidFile(ValueError):
    """A file value that cannot be used: bad data URI, wrong type, too large."""


@dataclass(frozen=True, slots=True)
class FileSpec:
    """What a file field takes: media ranges, and the largest file (None: the default)."""

    accept: tuple[str, ...] = (ANY_TYPE,)
    max_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class FileField:
    """A top-level input property that holds a file (``many``: a list of files)."""

    name: str
    spec: FileSpec
    many: bool = False


@dataclass(frozen=True, slots=True)
class DataUri:
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file sent as a multipart part ``file:<field>`` (POST /v1/predictions/upload)."""

    field: str
    data: bytes
    content_type: str | None = None
    filename: str | None = None


# -- the marker ----------------------------------------------------------------------------


def _is_uri_string(schema: Any) -> bool:
    return (
        isinstance(schema, dict)
        and schema.get("type") == "string"
        and schema.get("format") == "uri"
    )


def _marker_problems(marker: Any) -> list[str]:
    if not isinstance(marker, dict):
        return ["must be a table with optional keys accept and max_bytes"]
    problems = [f"unknown key {key!r}" for key in sorted(set(marker) - _MARKER_KEYS)]
    if "accept" in marker:
        accept = marker["accept"]
        if not isinstance(accept, list) or not accept:
            problems.append("accept must be a non-empty list of media types")
        else:
            for item in accept:
                if not isinstance(item, str) or not _MEDIA_RANGE.match(item.lower()):
                    problems.append(
                        f"accept: {item!r} is not a media type like 'image/png', 'image/*' or '*/*'"
                    )
    if "max_bytes" in marker:
        size = marker["max_bytes"]
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            problems.append("max_bytes must be a positive integer")
    return problems


def _markers(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every marker anywhere in a schema, with the path of the schema carrying it."""
    if isinstance(value, dict):
        for key, child in value.items():
            if key == FILE_MARKER:
                yield path, child
            else:
                yield from _markers(child, (*path, str(key)))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _markers(child, (*path, str(i)))


def marker_errors(schema: dict[str, Any]) -> list[str]:
    """What is wrong with the file markers of an input schema, each naming its place
    (``input_schema.properties.image.x-genyard-file: ...``); empty when all is well."""
    errors = []
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    for path, marker in _markers(schema, ()):
        where = ".".join(("input_schema", *path, FILE_MARKER))
        for problem in _marker_problems(marker):
            errors.append(f"{where}: {problem}")
        placed = len(path) >= 2 and path[0] == "properties"
        prop = properties.get(path[1]) if placed else None
        if placed and len(path) == 2:
            if not _is_uri_string(prop):
                errors.append(f"{where}: a file field must be {{type = 'string', format = 'uri'}}")
        elif placed and len(path) == 3 and path[2] == "items":
            if not isinstance(prop, dict) or prop.get("type") != "array":
                errors.append(f"{where}: 'items' carries the marker only in a type 'array'")
            elif not _is_uri_string(prop.get("items")):
                errors.append(
                    f"{where}: the items of a file list must be {{type = 'string', format = 'uri'}}"
                )
        else:
            errors.append(
                f"{where}: the marker belongs on a top-level property "
                "(properties.<name>) or on its items (properties.<name>.items)"
            )
    return errors


def _spec(marker: dict[str, Any]) -> FileSpec:
    accept = tuple(str(a).lower() for a in marker.get("accept", [ANY_TYPE]))
    max_bytes = marker.get("max_bytes")
    return FileSpec(accept, int(max_bytes) if max_bytes is not None else None)


def file_fields(schema: dict[str, Any]) -> dict[str, FileField]:
    """The file fields of an input schema (whose markers passed :func:`marker_errors`)."""
    found: dict[str, FileField] = {}
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return found
    for name, prop in properties.items():
        if not isinstance(prop, dict):
            continue
        if isinstance(prop.get(FILE_MARKER), dict):
            found[name] = FileField(name, _spec(prop[FILE_MARKER]))
        items = prop.get("items")
        marker = items.get(FILE_MARKER) if isinstance(items, dict) else None
        if prop.get("type") == "array" and isinstance(marker, dict):
            found[name] = FileField(name, _spec(marker), many=True)
    return found


def field_label(name: str, index: int | None) -> str:
    """How errors name a file value: ``input.image``, ``input.input_images[0]``."""
    return f"input.{name}" if index is None else f"input.{name}[{index}]"


def field_values(field: FileField, input: dict[str, Any]) -> Iterator[tuple[int | None, Any]]:
    """``(index, value)`` of each file in ``input`` for ``field`` (index None: single)."""
    if field.name not in input:
        return
    value = input[field.name]
    if field.many:
        if isinstance(value, list):
            yield from enumerate(value)
    elif value is not None:
        yield None, value


# -- media types ---------------------------------------------------------------------------


def media_type(content_type: str | None) -> str:
    """``type/subtype`` lower-cased, parameters dropped; ``""`` for nothing."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def accepts(accept: tuple[str, ...], content_type: str | None) -> bool:
    """Whether ``content_type`` matches one of the media ranges in ``accept``."""
    kind = media_type(content_type)
    if "/" not in kind:
        return ANY_TYPE in accept
    major = kind.split("/", 1)[0]
    return any(r in (ANY_TYPE, kind, f"{major}/*") for r in accept)


def type_from_name(filename: str | None) -> str | None:
    """The media type a file name's extension suggests, if any."""
    if not filename:
        return None
    return _TYPES.guess_type(filename, strict=False)[0]


def extension_for(content_type: str) -> str:
    """A file name extension for a media type (``.png``), or ``""``."""
    return _TYPES.guess_extension(media_type(content_type), strict=False) or ""


def describe_accept(accept: tuple[str, ...]) -> str:
    return ", ".join(accept)


# -- data URIs -----------------------------------------------------------------------------


def is_data_uri(value: str) -> bool:
    return value[:5].lower() == "data:"


def parse_data_uri(value: str, max_bytes: int | None = None) -> DataUri:
    """Decode ``data:[<type>][;base64],<data>`` (RFC 2397); :class:`InvalidFile` when it
    is malformed or, with ``max_bytes``, decodes to more than that (checked before
    decoding, from the encoded length, where it can be)."""
    match = _DATA_URI.match(value)
    if match is None:
        raise InvalidFile("a data URI needs a comma between its media type and its data")
    params = [p.strip() for p in match["meta"].split(";")]
    is_base64 = len(params) > 1 and params[-1].lower() == "base64"
    if is_base64:
        params = params[:-1]
    content_type = ";".join(params) if params[0] else DATA_URI_DEFAULT_TYPE
    if params[0] and "/" not in params[0]:
        raise InvalidFile(f"data URI media type {params[0]!r} is not 'type/subtype'")
    payload = match["data"]
    if is_base64:
        payload = "".join(payload.split())
        size = len(payload) * 3 // 4 - payload[-2:].count("=")  # before decoding
        if max_bytes is not None and size > max_bytes:
            raise InvalidFile(f"the file is {size} bytes; at most {max_bytes}")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidFile("the data URI's base64 data is malformed") from None
    else:
        data = unquote_to_bytes(payload)
    if max_bytes is not None and len(data) > max_bytes:
        raise InvalidFile(f"the file is {len(data)} bytes; at most {max_bytes}")
    return DataUri(content_type, data)


# -- walking values ------------------------------------------------------------------------

_SCALARS = (int, float, bool, type(None))


def map_leaves(value: Any, fn: Callable[[Any], Any]) -> Any:
    """``value`` with ``fn`` applied to every leaf that is not a number, bool or None,
    inside lists, tuples (become lists) and dict values. Containers are copied only
    where something changed, so a large output without files costs one pass."""
    kind = type(value)
    if kind is list or kind is tuple:
        out: list[Any] | None = list(value) if kind is tuple else None
        for i, item in enumerate(value):
            if type(item) in _SCALARS:
                continue
            new = map_leaves(item, fn)
            if new is not item:
                if out is None:
                    out = list(value)
                out[i] = new
        return value if out is None else out
    if kind is dict:
        changed: dict[Any, Any] | None = None
        for key, item in value.items():
            if type(item) in _SCALARS:
                continue
            new = map_leaves(item, fn)
            if new is not item:
                if changed is None:
                    changed = dict(value)
                changed[key] = new
        return value if changed is None else changed
    if kind in _SCALARS:
        return value
    return fn(value)
