"""Signed, expiring URLs for stored objects: HMAC-SHA256 with the server's secret.

A signed URL is ``<public url>/v1/files/<key>?expires=<unix seconds>&signature=<hex>``;
the signature covers the key and the expiry, so changing either (or the signature)
fails. Public objects also have a permanent ``<public url>/v1/files/<key>`` (no query),
served only when the object's metadata marks it public.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote, urlencode

from genyard.storage.keys import ID_LENGTH, new_key_id, validate_key

_PURPOSE = b"genyard/files/v1"
_OWNER_PURPOSE = b"genyard/files/owner/v1"
_TAG_LENGTH = 8


class InvalidSignature(ValueError):
    """A signed URL that is expired, altered or malformed."""


class UrlSigner:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("a secret is needed to sign URLs")
        # A key of its own, so these signatures mean nothing anywhere else the secret is used.
        self._key = hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()

    def sign(self, key: str, expires_at: int) -> str:
        """The hex signature of ``key`` valid until ``expires_at`` (Unix seconds)."""
        message = f"{validate_key(key)}\n{int(expires_at)}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def verify(self, key: str, expires: str | int, signature: str, now: float) -> None:
        """Return when the signature is good and unexpired; else :class:`InvalidSignature`."""
        try:
            expires_at = int(expires)
        except (TypeError, ValueError):
            raise InvalidSignature("expires must be Unix seconds") from None
        if str(expires_at) != str(expires).strip():
            raise InvalidSignature("expires must be Unix seconds")
        expected = self.sign(key, expires_at)
        if not hmac.compare_digest(expected.encode(), str(signature).lower().encode()):
            raise InvalidSignature("the signature does not match this URL")
        if now >= expires_at:
            raise InvalidSignature("this URL has expired")

    def signed_url(self, public_url: str, key: str, expires_at: int) -> str:
        query = urlencode({"expires": int(expires_at), "signature": self.sign(key, expires_at)})
        return f"{public_url.rstrip('/')}/v1/files/{quote(key, safe='/')}?{query}"


def public_url_for(public_url: str, key: str) -> str:
    """The permanent URL of a public object."""
    return f"{public_url.rstrip('/')}/v1/files/{quote(validate_key(key), safe='/')}"


class OwnerTags:
    """Key ids that say which account a key was made for, without any lookup.

    The random id segment of a key (``[folder/]<id>/<name>``) is 12 random characters
    and 8 hex characters of an HMAC over the account id and those 12, so that
    :meth:`owns` can tell that genyard stored a key *for this account*. Rendering uses
    it to decide which URLs in a job's output it may sign: a provider echoing another
    account's key (a text model, the diagnostic echo) does not get it signed.
    """

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("a secret is needed to tag keys")
        self._key = hmac.new(secret.encode(), _OWNER_PURPOSE, hashlib.sha256).digest()

    def _tag(self, owner: str, random_part: str) -> str:
        message = f"{owner}\n{random_part}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:_TAG_LENGTH]

    def new_id(self, owner: str) -> str:
        """A fresh id segment for a key stored for ``owner`` (an account id)."""
        random_part = new_key_id()[: ID_LENGTH - _TAG_LENGTH]
        return random_part + self._tag(owner, random_part)

    def owns(self, key: str, owner: str) -> bool:
        """Whether ``key`` was made by :meth:`new_id` for ``owner``."""
        segments = key.split("/")
        if len(segments) < 2 or len(segments[-2]) != ID_LENGTH:
            return False
        random_part, tag = segments[-2][:-_TAG_LENGTH], segments[-2][-_TAG_LENGTH:]
        return hmac.compare_digest(tag, self._tag(owner, random_part))
