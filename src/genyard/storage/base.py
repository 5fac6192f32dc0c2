"""The blob store contract every adapter (local directory now, S3 later) implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

DEFAULT_CONTENT_TYPE = "application/octet-stream"


class BlobNotFound(LookupError):
    """No object is stored under the key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no stored object with key {key!r}")
        self.key = key


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    content_type: str
    public: bool = False


@runtime_checkable
class BlobStore(Protocol):
    """Objects addressed by validated keys (see :mod:`genyard.storage.keys`)."""

    async def put(
        self, key: str, data: bytes, content_type: str, *, public: bool = False
    ) -> StoredObject:
        """Store ``data`` under ``key`` (replacing what was there)."""
        ...

    async def get(self, key: str) -> tuple[bytes, StoredObject]:
        """The object's bytes and metadata; :class:`BlobNotFound` when absent."""
        ...

    async def stat(self, key: str) -> StoredObject:
        """The object's metadata without its bytes; :class:`BlobNotFound` when absent."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> bool:
        """Remove the object; ``False`` when there was none."""
        ...

    async def delete_older_than(self, cutoff: float) -> int:
        """Remove every object stored before ``cutoff`` (Unix seconds); return how many."""
        ...
