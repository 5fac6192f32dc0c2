"""Fixtures shared by the test suites: the databases tests run on, SQLite and PostgreSQL.

A test whose fixtures include ``database`` runs once per kind, ``test_x[sqlite]`` and
``test_x[postgres]``; the variants are grouped per module, so a module's shared
server starts once per kind. ``@pytest.mark.sqlite_only(reason=...)`` keeps a test
on SQLite. The PostgreSQL variants carry the ``postgres`` mark (``-m "not postgres"``
runs SQLite alone) and share one real PostgreSQL 15 per session, started on first
use and stopped at the end (see ``postgres_server``); where PostgreSQL 15 is not
installed they are skipped with the reason. Each app, server or unit test gets its
own fresh database.
"""

from __future__ import annotations

import atexit
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from genyard.db.engine import Database
from genyard.db.migrate import migrate
from postgres_server import KINDS, Databases, PostgresServer, start_postgres, unavailable_reason
from redis_server import RedisServer
from redis_server import unavailable_reason as redis_unavailable_reason


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "postgres: the PostgreSQL variant of a test (runs on a real PostgreSQL 15)"
    )
    config.addinivalue_line(
        "markers", "sqlite_only(reason): the test runs on SQLite only; the reason says why"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database" not in metafunc.fixturenames:
        return
    sqlite_only = metafunc.definition.get_closest_marker("sqlite_only") is not None
    kinds = ["sqlite"] if sqlite_only else list(KINDS)
    params = [
        pytest.param(kind, id=kind, marks=[pytest.mark.postgres] if kind == "postgres" else [])
        for kind in kinds
    ]
    metafunc.parametrize("database", params, indirect=True, scope="module")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL 15 for the whole session (skips with the reason where it cannot run)."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = start_postgres()
    atexit.register(server.stop)  # should the session end without its teardown
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real Redis for the whole session (skips with the reason where it cannot run)."""
    reason = redis_unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = RedisServer().start()
    atexit.register(server.stop)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def database(request: pytest.FixtureRequest) -> str:
    """The kind of database this test runs on: ``sqlite`` or ``postgres``."""
    kind: str = request.param
    return kind


def _databases(kind: str, request: pytest.FixtureRequest) -> Databases:
    server = request.getfixturevalue("postgres_server") if kind == "postgres" else None
    return Databases(kind, server)


@pytest.fixture
def databases(database: str, request: pytest.FixtureRequest) -> Iterator[Databases]:
    """Fresh, empty databases of this test's kind: ``databases.new()``."""
    made = _databases(database, request)
    yield made
    made.drop_all()


@pytest.fixture(scope="module")
def module_databases(database: str, request: pytest.FixtureRequest) -> Iterator[Databases]:
    """:func:`databases` for module-scoped fixtures (a module's shared server)."""
    made = _databases(database, request)
    yield made
    made.drop_all()


@pytest.fixture
async def migrated_db(databases: Databases, tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh database (a SQLite file or a PostgreSQL database) brought to the newest
    schema by the real Alembic migrations."""
    db = Database(databases.new().sqlalchemy_url(tmp_path / "genyard.db"))
    await migrate(db)
    try:
        yield db
    finally:
        await db.dispose()
