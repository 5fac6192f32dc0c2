"""URLs for stored objects: the one way genyard makes them, reads them back, and signs
the file URLs of a job when it is shown.

A stored object has one *canonical* URL, ``<public url>/v1/files/<key>``: the permanent
URL of a public object, and the unsigned form of a private one. Jobs store canonical
URLs (in ``input`` and ``output``); :meth:`FileLinks.present` turns the private ones
into fresh signed URLs (``GENYARD_SIGNED_URL_SECONDS``) each time a job is rendered, in
a response, an event stream or a webhook, so every rendering hands out working links.

What gets signed is only what genyard put there: URLs in the input's file fields
(checked at submit: a valid signature, or a public object), and, for a job that is not
public, output URLs whose key was made for the job's account (see
:class:`~genyard.storage.signing.OwnerTags`). A URL a model merely echoes (another
account's key in a text output) stays as it is, unsigned and useless.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

from genyard.config import Settings
from genyard.domain.catalog import Catalog
from genyard.domain.files import map_leaves
from genyard.domain.jobs import Job
from genyard.storage.keys import InvalidKey, validate_key
from genyard.storage.signing import OwnerTags, UrlSigner, public_url_for

FILES_PATH = "/v1/files/"


@dataclass(frozen=True, slots=True)
class OwnUrl:
    """A URL of this server's ``/v1/files``, taken apart."""

    key: str
    expires: str | None
    signature: str | None
    #: Query parameters other than ``expires`` and ``signature``.
    other_params: tuple[str, ...] = ()


class FileLinks:
    def __init__(self, public_url: str, secret: str, signed_seconds: int, catalog: Catalog):
        self.base_url = public_url.rstrip("/")
        self._prefix = self.base_url + FILES_PATH
        self.signer = UrlSigner(secret)
        self.owners = OwnerTags(secret)
        self.signed_seconds = signed_seconds
        self.catalog = catalog

    @classmethod
    def from_settings(cls, settings: Settings, secret: str, catalog: Catalog) -> FileLinks:
        return cls(settings.resolved_public_url, secret, settings.signed_url_seconds, catalog)

    # -- making URLs -------------------------------------------------------------------

    def canonical(self, key: str) -> str:
        """The URL a job stores for ``key`` (a public object's permanent URL)."""
        return public_url_for(self.base_url, key)

    def url(self, key: str, *, public: bool = False, expires_in: int | None = None) -> str:
        """A URL to hand out now: permanent for a public object, else signed and valid
        for ``expires_in`` seconds (default ``GENYARD_SIGNED_URL_SECONDS``)."""
        if public:
            return self.canonical(key)
        return self.signer.signed_url(self.base_url, key, self._expiry(expires_in))

    def _expiry(self, expires_in: int | None = None) -> int:
        seconds = self.signed_seconds if expires_in is None else expires_in
        return int(time.time()) + seconds

    # -- reading URLs ------------------------------------------------------------------

    def parse(self, url: str) -> OwnUrl | None:
        """The parts of a ``/v1/files`` URL of this server (``GENYARD_PUBLIC_URL``), or
        None for any other URL. Raises :class:`InvalidKey` for a key that is not allowed."""
        if not url.startswith(self._prefix):
            return None
        rest = url[len(self._prefix) :].split("#", 1)[0]
        path, _, query = rest.partition("?")
        key = validate_key(unquote(path))
        params = parse_qs(query, keep_blank_values=True)
        other = tuple(sorted(set(params) - {"expires", "signature"}))
        expires, signature = params.get("expires", [None])[0], params.get("signature", [None])[0]
        return OwnUrl(key, expires, signature, other)

    def _key_of(self, value: str) -> str | None:
        try:
            own = self.parse(value)
        except InvalidKey:
            return None
        return own.key if own is not None else None

    # -- showing a job -----------------------------------------------------------------

    def present(self, job: Job, *, expires_at: int | None = None) -> tuple[dict[str, Any], Any]:
        """The job's ``input`` and ``output`` with its private file URLs freshly signed
        (valid until ``expires_at``, default ``GENYARD_SIGNED_URL_SECONDS`` from now)."""
        if expires_at is None:
            expires_at = self._expiry()

        def sign(value: Any, owner: str | None = None) -> Any:
            if not isinstance(value, str) or not value.startswith(self._prefix):
                return value
            key = self._key_of(value)
            if key is None or (owner is not None and not self.owners.owns(key, owner)):
                return value
            return self.signer.signed_url(self.base_url, key, expires_at)

        input = job.input
        entry = self.catalog.get(job.model)
        if entry is not None and entry.files:
            input = dict(input)
            for name in entry.files.keys() & input.keys():
                input[name] = map_leaves(input[name], sign)
        output = job.output
        if output is not None and not job.is_public:
            output = map_leaves(output, lambda value: sign(value, job.account_id))
        return input, output
