"""/v1/files/{key}: stored objects served by signed, expiring URLs, and public objects
by permanent ones (the same path without a signature). No API key: the signature (or
the object's public flag) is the credential."""

from __future__ import annotations

import time

from fastapi import APIRouter
from starlette.responses import Response

from genyard.api.deps import ServicesDep
from genyard.errors import Forbidden, NotFound, Unauthorized
from genyard.services.container import Services
from genyard.storage.base import BlobNotFound, StoredObject
from genyard.storage.keys import InvalidKey
from genyard.storage.signing import InvalidSignature

router = APIRouter(tags=["files"])


def _not_found(key: str) -> NotFound:
    return NotFound(f"no file {key!r}", {"key": key})


async def _load(services: Services, key: str) -> tuple[bytes, StoredObject]:
    try:
        return await services.blobs.get(key)
    except (BlobNotFound, InvalidKey):
        raise _not_found(key) from None


def _serve(data: bytes, stored: StoredObject, cache_control: str) -> Response:
    return Response(
        content=data,
        headers={
            "Content-Type": stored.content_type,
            "Cache-Control": cache_control,
            "X-Content-Type-Options": "nosniff",
            # Stored files never run as pages of this origin.
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


@router.get("/v1/files/{key:path}")
async def get_file(
    key: str,
    services: ServicesDep,
    expires: str | None = None,
    signature: str | None = None,
) -> Response:
    """A signed URL (``expires`` + ``signature``) serves any stored object; without
    them, only an object stored as public is served (its permanent URL)."""
    if expires is None and signature is None:
        try:
            data, stored = await services.blobs.get(key)
        except (BlobNotFound, InvalidKey):
            stored = None
        if stored is None or not stored.public:
            # Neither public nor signed: whether the object exists is not revealed.
            raise Unauthorized(
                "this file needs a signed URL: the 'expires' and 'signature' query "
                "parameters are missing",
                {"missing": ["expires", "signature"]},
            )
        return _serve(data, stored, "public, max-age=3600")
    if not expires or not signature:
        raise Unauthorized(
            "a signed URL needs both 'expires' and 'signature'",
            {"missing": [n for n, v in (("expires", expires), ("signature", signature)) if not v]},
        )
    try:
        services.files.links.signer.verify(key, expires, signature, now=time.time())
    except InvalidSignature as exc:
        raise Forbidden(str(exc)) from None
    except InvalidKey:
        raise _not_found(key) from None
    data, stored = await _load(services, key)
    return _serve(data, stored, "private")
