"""File inputs and outputs of jobs, between the API, the blob store and the workers.

At submit (:meth:`FileService.prepare_inputs`, then :meth:`FileService.store_inputs`),
each value of a file field (see :mod:`genyard.domain.files`) is one of:

- a data URI or an uploaded file: decoded, type and size checked, stored private under
  ``inputs/`` and replaced by its canonical URL;
- a URL of this server's ``/v1/files``: its signature checked (unless the object is
  public), the object must exist and fit the field; kept in canonical (unsigned) form;
- another http(s) URL: checked by form and literal address (no DNS), kept as given;

anything else is a field error. At run time (:meth:`FileService.open_inputs`) file
values become :class:`~genyard.providers.base.InputFile`: genyard's own files are read
from the blob store (never fetched back over HTTP), other URLs are fetched through the
URL guard. :meth:`FileService.store_outputs` stores the provider's
:class:`~genyard.providers.base.OutputFile` values and puts their URLs in their place.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from genyard.config import Settings
from genyard.domain.catalog import ModelEntry
from genyard.domain.files import (
    GENERIC_TYPES,
    FileField,
    FileSpec,
    InvalidFile,
    UploadedFile,
    accepts,
    describe_accept,
    extension_for,
    field_label,
    field_values,
    is_data_uri,
    map_leaves,
    media_type,
    parse_data_uri,
    type_from_name,
)
from genyard.domain.validation import FieldError
from genyard.errors import InvalidInput
from genyard.net import FetchFailed, UrlGuard, UrlRefused
from genyard.providers.base import InputFile, OutputFile
from genyard.queue.lifecycle import ClaimedJob
from genyard.services.file_links import FileLinks, OwnUrl
from genyard.storage.base import DEFAULT_CONTENT_TYPE, BlobNotFound, BlobStore
from genyard.storage.keys import (
    DEFAULT_FILENAME,
    InvalidContentType,
    InvalidKey,
    check_content_type,
    make_key,
    sanitize_filename,
)
from genyard.storage.signing import InvalidSignature

log = logging.getLogger(__name__)
INPUTS_FOLDER = "inputs"
NOT_A_FILE = "must be an http(s) URL, a data URI or an uploaded file"
#: Where an upload sits in the input: (field, index in a list field or None).
Position = tuple[str, int | None]


@dataclass(slots=True)
class _ToStore:
    position: Position
    data: bytes
    content_type: str
    filename: str


@dataclass(slots=True)
class PreparedInputs:
    """An input whose file values were checked: own URLs made canonical, the files to
    store waiting in ``to_store``. Store them only when ``errors`` is empty."""

    input: dict[str, Any]
    errors: list[FieldError] = field(default_factory=list)
    to_store: list[_ToStore] = field(default_factory=list)


def _upload_placeholder(upload: UploadedFile) -> str:
    return f"(uploaded file {upload.filename or DEFAULT_FILENAME})"


class FileService:
    def __init__(
        self, settings: Settings, blobs: BlobStore, links: FileLinks, guard: UrlGuard
    ) -> None:
        self.settings = settings
        self.blobs = blobs
        self.links = links
        self.guard = guard

    def limit(self, spec: FileSpec) -> int:
        return spec.max_bytes or self.settings.max_input_file_bytes

    # -- submit ------------------------------------------------------------------------

    def attach_uploads(
        self, entry: ModelEntry, input: dict[str, Any], uploads: Iterable[UploadedFile]
    ) -> tuple[dict[str, Any], dict[Position, UploadedFile], list[FieldError]]:
        """Put uploaded files in the input (after any URLs of a list field) as
        placeholders for validation; return the input, where each upload sits, and the
        errors, named ``file:<field>``."""
        merged = dict(input)
        at: dict[Position, UploadedFile] = {}
        errors: list[FieldError] = []
        by_field: dict[str, list[UploadedFile]] = {}
        for upload in uploads:
            by_field.setdefault(upload.field, []).append(upload)
        for name, files in by_field.items():
            part = f"file:{name}"
            fld = entry.files.get(name)
            if fld is None:
                known = ", ".join(sorted(entry.files)) or "none"
                message = f"{name!r} is not a file field of {entry.id} (its file fields: {known})"
                errors.append(FieldError(part, message))
            elif fld.many:
                current = merged.get(name, [])
                if not isinstance(current, list):
                    errors.append(FieldError(part, f"input.{name} must be a list to add files"))
                    continue
                merged[name] = [*current, *map(_upload_placeholder, files)]
                for i, upload in enumerate(files, start=len(current)):
                    at[(name, i)] = upload
            elif len(files) > 1:
                errors.append(FieldError(part, f"takes one file; {len(files)} were sent"))
            elif merged.get(name) is not None:
                errors.append(FieldError(part, f"input.{name} is given too; send one of them"))
            else:
                merged[name] = _upload_placeholder(files[0])
                at[(name, None)] = files[0]
        return merged, at, errors

    async def prepare_inputs(
        self,
        entry: ModelEntry,
        input: dict[str, Any],
        uploads: Mapping[Position, UploadedFile] | None = None,
    ) -> PreparedInputs:
        """Check every file value of a validated input (see the module docstring)."""
        prepared = PreparedInputs(input)
        for fld in entry.files.values():
            for index, value in list(field_values(fld, input)):
                label = field_label(fld.name, index)
                upload = (uploads or {}).get((fld.name, index))
                if upload is None and not isinstance(value, str):
                    continue  # the schema (a string, always) has named it already
                try:
                    if upload is not None:
                        self._take_upload(prepared, fld, index, upload)
                    elif isinstance(value, str) and is_data_uri(value):
                        self._take_data_uri(prepared, fld, index, value)
                    else:
                        url = await self._check_url(fld, value)
                        _place(input, (fld.name, index), url)
                except InvalidFile as exc:
                    prepared.errors.append(FieldError(label, str(exc)))
        return prepared

    def _take_upload(
        self, prepared: PreparedInputs, fld: FileField, index: int | None, upload: UploadedFile
    ) -> None:
        given = media_type(upload.content_type)
        if not given or given in GENERIC_TYPES:
            content_type = type_from_name(upload.filename) or upload.content_type
        else:
            content_type = upload.content_type
        filename = sanitize_filename(upload.filename)
        self._accept(prepared, fld, index, upload.data, content_type, filename)

    def _take_data_uri(
        self, prepared: PreparedInputs, fld: FileField, index: int | None, value: str
    ) -> None:
        parsed = parse_data_uri(value, self.limit(fld.spec))
        filename = DEFAULT_FILENAME + extension_for(parsed.content_type)
        self._accept(prepared, fld, index, parsed.data, parsed.content_type, filename)

    def _accept(
        self,
        prepared: PreparedInputs,
        fld: FileField,
        index: int | None,
        data: bytes,
        content_type: str | None,
        filename: str,
    ) -> None:
        try:
            content_type = check_content_type(content_type, DEFAULT_CONTENT_TYPE)
        except InvalidContentType as exc:
            raise InvalidFile(str(exc)) from None
        _check_fits(fld.spec, self.limit(fld.spec), len(data), content_type)
        prepared.to_store.append(_ToStore((fld.name, index), data, content_type, filename))

    async def _check_url(self, fld: FileField, value: Any) -> str:
        """The URL to keep for ``value``; :class:`InvalidFile` when it cannot be used."""
        if not isinstance(value, str) or urlsplit(value).scheme.lower() not in ("http", "https"):
            raise InvalidFile(NOT_A_FILE)
        try:
            own = self.links.parse(value)
        except InvalidKey:
            raise InvalidFile("is not a file URL this server handed out") from None
        if own is not None:
            return await self._check_own(fld, own)
        try:
            self.guard.check_static(value)
        except UrlRefused as exc:
            raise InvalidFile(exc.reason) from None
        return value

    async def _check_own(self, fld: FileField, own: OwnUrl) -> str:
        if own.other_params:
            raise InvalidFile(
                "a file URL takes only the query parameters expires and signature, not "
                + ", ".join(own.other_params)
            )
        signed = own.expires is not None or own.signature is not None
        if signed:
            if not own.expires or not own.signature:
                raise InvalidFile("a signed file URL needs both expires and signature")
            try:
                self.links.signer.verify(own.key, own.expires, own.signature, now=time.time())
            except InvalidSignature as exc:
                raise InvalidFile(f"{exc}; use a fresh URL") from None
        try:
            stored = await self.blobs.stat(own.key)
        except BlobNotFound:
            stored = None
        if not signed and (stored is None or not stored.public):
            # As GET /v1/files: whether a private object exists is not revealed.
            raise InvalidFile("a private file needs its signed URL (expires and signature)")
        if stored is None:
            raise InvalidFile("the file no longer exists")
        _check_fits(fld.spec, self.limit(fld.spec), stored.size, stored.content_type)
        return self.links.canonical(own.key)

    async def store_inputs(
        self, prepared: PreparedInputs, account_id: str
    ) -> tuple[dict[str, Any], list[str]]:
        """Store the prepared files (private, under ``inputs/``); the input with their
        URLs in place, and the keys written (for :meth:`discard` should the submit fail)."""
        keys: list[str] = []
        try:
            for item in prepared.to_store:
                key = make_key(INPUTS_FOLDER, item.filename, self.links.owners.new_id(account_id))
                await self.blobs.put(key, item.data, item.content_type)
                keys.append(key)
                _place(prepared.input, item.position, self.links.canonical(key))
        except BaseException:
            await self.discard(keys)
            raise
        return prepared.input, keys

    async def discard(self, keys: Iterable[str]) -> None:
        """Delete stored objects, logging (not raising) what fails."""
        for key in keys:
            try:
                await self.blobs.delete(key)
            except Exception:
                log.exception("could not delete stored file %s", key)

    # -- run time ----------------------------------------------------------------------

    async def open_inputs(self, entry: ModelEntry, input: dict[str, Any]) -> dict[str, Any]:
        """The input with each file value read into an :class:`InputFile`; raises
        :class:`InvalidInput` naming the field when one cannot be read."""
        if not has_files(entry, input):
            return input
        opened = dict(input)
        for fld in entry.files.values():
            values = list(field_values(fld, input))
            files = await asyncio.gather(
                *(self._open(fld, index, value) for index, value in values)
            )
            if fld.many and values:
                opened[fld.name] = list(files)
            elif values:
                opened[fld.name] = files[0]
        return opened

    async def _open(self, fld: FileField, index: int | None, url: Any) -> InputFile:
        label = field_label(fld.name, index)
        if not isinstance(url, str):
            raise InvalidInput(f"{label}: {NOT_A_FILE}")
        try:
            own = self.links.parse(url)
        except InvalidKey:
            own = None
        if own is not None:
            try:
                data, stored = await self.blobs.get(own.key)
            except BlobNotFound:
                raise InvalidInput(f"{label}: the stored file {url} no longer exists") from None
            return InputFile(data, stored.content_type, own.key.rsplit("/", 1)[-1], url)
        limit = min(self.limit(fld.spec), self.guard.max_bytes)
        try:
            fetched = await self.guard.fetch(url, max_bytes=limit)
        except (UrlRefused, FetchFailed) as exc:
            raise InvalidInput(f"{label}: could not fetch {url}: {exc.reason}") from None
        name = unquote(urlsplit(fetched.final_url).path.rsplit("/", 1)[-1])
        header = media_type(fetched.content_type)
        content_type = fetched.content_type or DEFAULT_CONTENT_TYPE
        if not header or header in GENERIC_TYPES:
            content_type = type_from_name(name) or content_type
        try:
            _check_fits(fld.spec, limit, len(fetched.content), content_type)
        except InvalidFile as exc:
            raise InvalidInput(f"{label}: {url}: {exc}") from None
        filename = sanitize_filename(name)
        if filename == DEFAULT_FILENAME:
            filename += extension_for(content_type)
        return InputFile(fetched.content, content_type.strip(), filename, url)

    async def store_outputs(self, job: ClaimedJob, output: Any) -> tuple[Any, list[str]]:
        """Store every :class:`OutputFile` in ``output`` under the job's output folder
        (public when the job is); the output with their canonical URLs in place, and the
        keys written."""
        found: list[tuple[str, OutputFile]] = []

        def swap(value: Any) -> Any:
            if not isinstance(value, OutputFile):
                return value
            key_id = self.links.owners.new_id(job.account_id)
            key = make_key(job.output_folder or None, value.filename, key_id)
            found.append((key, value))
            return self.links.canonical(key)

        replaced = map_leaves(output, swap)
        keys: list[str] = []
        try:
            for key, file in found:
                await self.blobs.put(key, file.data, file.content_type, public=job.is_public)
                keys.append(key)
        except BaseException:
            await self.discard(keys)
            raise
        return replaced, keys


def has_files(entry: ModelEntry, input: dict[str, Any]) -> bool:
    """Whether ``input`` gives any of the model's file fields a value."""
    return any(input.get(name) is not None for name in entry.files)


def _check_fits(spec: FileSpec, limit: int, size: int, content_type: str) -> None:
    if size > limit:
        raise InvalidFile(f"the file is {size} bytes; this field accepts at most {limit}")
    if not accepts(spec.accept, content_type):
        raise InvalidFile(
            f"the file is {media_type(content_type) or 'of no type'}; this field accepts "
            + describe_accept(spec.accept)
        )


def _place(input: dict[str, Any], position: Position, value: str) -> None:
    name, index = position
    if index is None:
        input[name] = value
    else:
        input[name][index] = value
