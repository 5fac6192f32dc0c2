"""Fixtures for the in-process API tests (see support.py).

Every app runs on a fresh database of the test's kind: the tests that build apps run
twice, ``[sqlite]`` and ``[postgres]`` (see ``tests/conftest.py``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from postgres_server import Databases, FreshDatabase

from .support import Api, ApiFactory, running_api, write_test_catalog


@pytest.fixture(autouse=True)
def _no_genyard_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings come from the test alone, never from the developer's GENYARD_* variables."""
    for name in list(os.environ):
        if name.startswith("GENYARD_"):
            monkeypatch.delenv(name)
    yield


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    return write_test_catalog(tmp_path / "catalog")


@pytest.fixture
def make_api(tmp_path: Path, catalog_dir: Path, databases: Databases) -> ApiFactory:
    """``async with make_api(workers=False, **settings) as api``: a fresh app, data dir
    and database (``db=`` a :class:`FreshDatabase` to share one between apps)."""
    counter = 0

    def factory(*, workers: bool = True, db: FreshDatabase | None = None, **overrides: Any) -> Any:
        nonlocal counter
        counter += 1
        catalog = overrides.pop("catalog_dir", catalog_dir)
        settings = (db or databases.new()).settings() | overrides
        return running_api(tmp_path / f"data{counter}", catalog, workers=workers, **settings)

    return factory


@pytest.fixture
async def api(make_api: ApiFactory) -> AsyncIterator[Api]:
    """The default app: workers running, diagnostic models on, the test catalog added."""
    async with make_api() as running:
        yield running


@pytest.fixture
async def queue_only_api(make_api: ApiFactory) -> AsyncIterator[Api]:
    """The API without workers or reaper (as ``genyard api`` runs): jobs stay pending."""
    async with make_api(workers=False) as running:
        yield running
