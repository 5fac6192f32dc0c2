"""The embedded blob store: a local directory.

Layout under ``root``: ``objects/<key>`` holds the bytes, ``meta/<key>.json`` the
content type, size and public flag (written after the bytes, removed before them, so
an object exists exactly when its metadata does), ``tmp/`` the files being written
(each write is a temp file moved into place with ``os.replace``). Blocking file I/O
runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from pathlib import Path

from genyard.storage.base import DEFAULT_CONTENT_TYPE, BlobNotFound, StoredObject
from genyard.storage.keys import InvalidKey, check_content_type, validate_key

OBJECTS = "objects"
META = "meta"
TMP = "tmp"


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- paths ---------------------------------------------------------------------

    def _inside(self, area: str, relative: str) -> Path:
        base = (self.root / area).resolve()
        path = (base / relative).resolve()
        if not path.is_relative_to(base) or path == base:
            raise InvalidKey(f"key {relative!r} resolves outside the store")
        return path

    def object_path(self, key: str) -> Path:
        """Where ``key``'s bytes live; :class:`InvalidKey` for a key that is not allowed
        or whose path would leave the store (through ``..`` or a symlink)."""
        return self._inside(OBJECTS, validate_key(key))

    def meta_path(self, key: str) -> Path:
        return self._inside(META, validate_key(key) + ".json")

    # -- blocking parts ------------------------------------------------------------

    def _write_atomic(self, path: Path, data: bytes) -> None:
        tmp_dir = self.root / TMP
        tmp_dir.mkdir(parents=True, exist_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="put-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise

    def _put(self, key: str, data: bytes, content_type: str, public: bool) -> StoredObject:
        data_path, meta_path = self.object_path(key), self.meta_path(key)
        stored = StoredObject(key, len(data), content_type, public)
        meta = {"content_type": content_type, "size": len(data), "public": public}
        self._write_atomic(data_path, data)
        self._write_atomic(meta_path, json.dumps(meta).encode())
        return stored

    def _stat(self, key: str) -> StoredObject:
        try:
            meta = json.loads(self.meta_path(key).read_bytes())
        except (FileNotFoundError, NotADirectoryError):
            raise BlobNotFound(key) from None
        return StoredObject(
            key=key,
            size=int(meta["size"]),
            content_type=str(meta["content_type"]),
            public=bool(meta.get("public", False)),
        )

    def _get(self, key: str) -> tuple[bytes, StoredObject]:
        stored = self._stat(key)
        try:
            data = self.object_path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise BlobNotFound(key) from None
        return data, StoredObject(key, len(data), stored.content_type, stored.public)

    def _exists(self, key: str) -> bool:
        return self.meta_path(key).is_file() and self.object_path(key).is_file()

    def _delete(self, key: str) -> bool:
        found = False
        for path in (self.meta_path(key), self.object_path(key)):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                path.unlink()
                found = True
        return found

    def _delete_older_than(self, cutoff: float) -> int:
        """Objects whose metadata was written before ``cutoff`` go (metadata first, as in
        ``_delete``); then temp files and empty folders older than ``cutoff``."""
        meta_root = self.root / META
        removed = 0
        for directory, _, names in os.walk(meta_root):
            for name in names:
                if not name.endswith(".json"):
                    continue
                path = Path(directory, name)
                try:
                    if path.stat().st_mtime >= cutoff:
                        continue
                except FileNotFoundError:
                    continue
                key = path.relative_to(meta_root).as_posix()[: -len(".json")]
                try:
                    removed += self._delete(key)
                except InvalidKey:
                    continue
        for area in (OBJECTS, META):
            _remove_empty_dirs(self.root / area, cutoff)
        tmp = self.root / TMP
        for path in tmp.glob("put-*") if tmp.is_dir() else ():
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
        return removed

    # -- the BlobStore protocol ------------------------------------------------------

    async def put(
        self, key: str, data: bytes, content_type: str, *, public: bool = False
    ) -> StoredObject:
        content_type = check_content_type(content_type, DEFAULT_CONTENT_TYPE)
        return await asyncio.to_thread(self._put, key, bytes(data), content_type, public)

    async def get(self, key: str) -> tuple[bytes, StoredObject]:
        return await asyncio.to_thread(self._get, key)

    async def stat(self, key: str) -> StoredObject:
        return await asyncio.to_thread(self._stat, key)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._exists, key)

    async def delete(self, key: str) -> bool:
        return await asyncio.to_thread(self._delete, key)

    async def delete_older_than(self, cutoff: float) -> int:
        return await asyncio.to_thread(self._delete_older_than, cutoff)


def _remove_empty_dirs(root: Path, cutoff: float) -> None:
    """Remove folders under ``root`` (not ``root``) that are empty and were last changed
    before ``cutoff``, deepest first. Their times are read before anything is removed,
    so a folder emptied by this pass goes too, and one a write creates meanwhile (new,
    or no longer empty) stays."""
    changed: list[tuple[Path, float]] = []
    for directory, _, _ in os.walk(root):
        path = Path(directory)
        with contextlib.suppress(FileNotFoundError):
            if path != root:
                changed.append((path, path.stat().st_mtime))
    for path, mtime in sorted(changed, key=lambda item: -len(item[0].parts)):
        if mtime < cutoff:
            with contextlib.suppress(OSError):  # not empty, or gone
                path.rmdir()
