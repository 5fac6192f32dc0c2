"""GENYARD_FILES_RETENTION_DAYS: processes that run workers sweep old files."""

from __future__ import annotations

import asyncio
import os
import time

from genyard.storage import make_key

from .support import ApiFactory


async def test_files_past_retention_are_swept(make_api: ApiFactory) -> None:
    async with make_api(files_retention_days=1, files_sweep_interval=0.1) as api:
        blobs = api.services.blobs
        old, new = make_key("out", "old.png"), make_key("out", "new.png")
        for key in (old, new):
            await blobs.put(key, b"png", "image/png")
        then = time.time() - 1.5 * 86400
        os.utime(blobs.meta_path(old), (then, then))
        deadline = time.monotonic() + 5
        while await blobs.exists(old):
            assert time.monotonic() < deadline, "the old file was never swept"
            await asyncio.sleep(0.05)
        assert await blobs.exists(new)


async def test_no_sweeper_without_retention_or_without_workers(make_api: ApiFactory) -> None:
    async with make_api() as api:
        assert api.settings.files_retention_days == 0
        assert api.services.sweeper is None
    async with make_api(workers=False, files_retention_days=1) as api:
        assert api.services.sweeper is None  # an API process (genyard api) does not sweep
