"""Fixtures shared by the test suites: a real, migrated SQLite database in a tmp dir."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from genyard.db.engine import Database
from genyard.db.migrate import migrate


@pytest.fixture
async def migrated_db(tmp_path: Path) -> AsyncIterator[Database]:
    """A SQLite file brought to the newest schema by the real Alembic migrations."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'genyard.db'}")
    await migrate(db)
    try:
        yield db
    finally:
        await db.dispose()
