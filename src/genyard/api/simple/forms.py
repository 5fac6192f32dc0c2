"""The multipart bodies of ``/api/stt``, ``/api/voice-clone`` and ``/api/image2text``:
parts read by name, every bad part named in one 400."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Request
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import FormParser

from genyard.api.native.upload import limited, read_form
from genyard.domain.files import UploadedFile
from genyard.domain.validation import FieldError
from genyard.services.container import Services
from genyard.services.predictions import invalid

URLENCODED = "application/x-www-form-urlencoded"
_TRUE, _FALSE = frozenset({"true", "1", "yes", "on"}), frozenset({"false", "0", "no", "off"})


class Form:
    """A parsed multipart body. Accessors record errors; :meth:`check` raises them."""

    def __init__(self, form: FormData) -> None:
        self._form = form
        self.errors: list[FieldError] = []

    @classmethod
    async def read(cls, request: Request, services: Services) -> Form:
        """A multipart body; an url-encoded one too (it can carry no file, so the
        answer is the 400 naming the missing file rather than a 415)."""
        settings = services.settings
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media == URLENCODED:
            parser = FormParser(request.headers, limited(request, settings.max_body_bytes))
            return cls(await parser.parse())
        return cls(await read_form(request, settings.max_upload_bytes, settings.max_body_bytes))

    async def close(self) -> None:
        await self._form.close()

    @classmethod
    @asynccontextmanager
    async def parts(cls, request: Request, services: Services) -> AsyncIterator[Form]:
        """The body (:meth:`read`) for the block that reads its parts; then closed, and
        every error the block recorded raised in one 400 (:meth:`check`)."""
        form = await cls.read(request, services)
        try:
            yield form
        finally:
            await form.close()
        form.check()

    async def file(self, name: str, model_field: str, what: str) -> UploadedFile | None:
        """The file part ``name`` (required), for the model's file field ``model_field``."""
        value = self._form.get(name)
        if value is None:
            self.errors.append(FieldError(name, f"is required ({what}, as a multipart file part)"))
            return None
        if not isinstance(value, UploadFile):
            self.errors.append(FieldError(name, f"must be a file part with a filename ({what})"))
            return None
        data = await value.read()
        if not data:
            self.errors.append(FieldError(name, "is empty"))
            return None
        return UploadedFile(model_field, data, value.content_type, value.filename)

    def text(self, name: str) -> str | None:
        """The text part ``name``; absent or blank -> None."""
        value = self._form.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            self.errors.append(FieldError(name, "must be a text part, not a file"))
            return None
        return value if value.strip() else None

    def boolean(self, name: str) -> bool | None:
        value = self.text(name)
        if value is None:
            return None
        word = value.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        self.errors.append(FieldError(name, f"must be true or false, got {value!r}"))
        return None

    def integer(self, name: str) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return int(value.strip())
        except ValueError:
            self.errors.append(FieldError(name, f"must be an integer, got {value!r}"))
            return None

    def number(self, name: str, low: float, high: float) -> float | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            number = float(value.strip())
        except ValueError:
            self.errors.append(FieldError(name, f"must be a number, got {value!r}"))
            return None
        if not low <= number <= high:
            self.errors.append(FieldError(name, f"must be between {low:g} and {high:g}"))
            return None
        return number

    def check(self) -> None:
        if self.errors:
            raise invalid(self.errors)
