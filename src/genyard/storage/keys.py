"""Object keys: validation, file name sanitising, and fresh collision-free keys.

A key is ``[folder/]<random id>/<file name>``: ``/``-separated segments, never absolute,
never ``.`` or ``..``, no empty segments, no backslashes, no control characters. Stores
validate every key they are given, and still check that the resulting path stays inside
their root.
"""

from __future__ import annotations

import re
import secrets
import string
import unicodedata

MAX_FOLDER_LENGTH = 256
MAX_FILENAME_LENGTH = 128
MAX_EXTENSION_LENGTH = 16
MAX_KEY_LENGTH = 512
DEFAULT_FILENAME = "file"
ID_LENGTH = 20
_ID_ALPHABET = string.ascii_lowercase + string.digits
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_UNSAFE_EXTENSION = re.compile(r"[^A-Za-z0-9]+")
_CONTENT_TYPE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
    r"(\s*;\s*[A-Za-z0-9!#$&^_.+-]+=(\"[^\"\\\r\n]*\"|[A-Za-z0-9!#$&^_.+-]+))*$"
)


class InvalidKey(ValueError):
    """A key or folder that is not allowed."""


class InvalidContentType(ValueError):
    """A content type that is not ``type/subtype[; param=value]``."""


def _check_path(value: str, what: str) -> None:
    if "\\" in value:
        raise InvalidKey(f"{what} must not contain backslashes: {value!r}")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise InvalidKey(f"{what} must not contain control characters: {value!r}")
    if value.startswith("/"):
        raise InvalidKey(f"{what} must be relative, not an absolute path: {value!r}")
    for segment in value.split("/"):
        if segment == "":
            raise InvalidKey(f"{what} must not contain empty segments ('//' or a trailing '/')")
        if segment in (".", ".."):
            raise InvalidKey(f"{what} must not contain '.' or '..' segments: {value!r}")


def validate_folder(folder: str) -> str:
    """``folder`` when it is an allowed folder path; else :class:`InvalidKey`."""
    if len(folder) > MAX_FOLDER_LENGTH:
        raise InvalidKey(f"folder is {len(folder)} characters; at most {MAX_FOLDER_LENGTH}")
    if not folder:
        raise InvalidKey("folder must not be empty (omit it instead)")
    _check_path(folder, "folder")
    return folder


def validate_key(key: str) -> str:
    """``key`` when it is an allowed object key; else :class:`InvalidKey`."""
    if not isinstance(key, str) or not key:
        raise InvalidKey("key must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(f"key is {len(key)} characters; at most {MAX_KEY_LENGTH}")
    _check_path(key, "key")
    return key


def sanitize_filename(filename: str | None, default: str = DEFAULT_FILENAME) -> str:
    """A safe base name: directories stripped, ASCII letters, digits, ``._-`` only,
    the extension kept, at most :data:`MAX_FILENAME_LENGTH` characters, never empty,
    never ``.`` or ``..``, never hidden (leading dot)."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem.strip("."):  # no extension, or a dot file like ".bashrc"
        stem, extension = name, ""

    def ascii_only(text: str) -> str:
        return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")

    extension = _UNSAFE_EXTENSION.sub("", ascii_only(extension))[:MAX_EXTENSION_LENGTH].lower()
    stem = _UNSAFE_NAME.sub("_", ascii_only(stem)).strip("._-")
    stem = re.sub(r"\.{2,}", ".", stem) or default
    suffix = f".{extension}" if extension else ""
    stem = stem[: MAX_FILENAME_LENGTH - len(suffix)].rstrip("._-") or default
    return stem + suffix


def new_key_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(ID_LENGTH))


def make_key(folder: str | None, filename: str | None, key_id: str | None = None) -> str:
    """A fresh key ``[folder/]<random id>/<safe file name>``: names never collide.
    ``key_id`` replaces the random id (see ``OwnerTags.new_id``)."""
    parts = [validate_folder(folder)] if folder is not None else []
    parts += [key_id or new_key_id(), sanitize_filename(filename)]
    return validate_key("/".join(parts))


def check_content_type(content_type: str | None, default: str) -> str:
    """A well-formed ``type/subtype[; param=value]`` (no line breaks), or ``default``."""
    if not content_type:
        return default
    content_type = content_type.strip()
    if len(content_type) > 255 or not _CONTENT_TYPE.match(content_type):
        raise InvalidContentType(f"invalid content type {content_type!r}")
    return content_type
