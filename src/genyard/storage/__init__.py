"""Blob storage: a :class:`BlobStore` Protocol, key rules, the local-directory store and
signed URLs for serving it (``/v1/files``)."""

from genyard.storage.base import BlobNotFound, BlobStore, StoredObject
from genyard.storage.keys import InvalidKey, make_key, sanitize_filename, validate_key
from genyard.storage.local import LocalBlobStore
from genyard.storage.signing import InvalidSignature, OwnerTags, UrlSigner, public_url_for

__all__ = [
    "BlobNotFound",
    "BlobStore",
    "InvalidKey",
    "InvalidSignature",
    "LocalBlobStore",
    "OwnerTags",
    "StoredObject",
    "UrlSigner",
    "make_key",
    "public_url_for",
    "sanitize_filename",
    "validate_key",
]
