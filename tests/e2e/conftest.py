"""Fixtures for the end-to-end suite (helpers live in ``e2e_support``).

Every server runs on a fresh database of the test's kind, so the suite runs twice,
``[sqlite]`` and ``[postgres]`` (see ``tests/conftest.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Cluster, Server

from postgres_server import Databases, FreshDatabase, PostgresServer

# -- fixtures ------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"e2e_report_{report.when}", report)
    return report


_SERVERS: list[Server] = []  # servers of the running tests, for failure reports
_FUNCTION_SERVERS: list[Server] = []


@pytest.fixture(autouse=True)
def _server_logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """When a test fails, show what its servers said (pytest prints teardown output)."""
    yield
    report = getattr(request.node, "e2e_report_call", None)
    if report is not None and report.failed:
        for server in _SERVERS:
            print(f"--- {server.root} (start {server.starts}) stderr tail ---")
            print(server.tail(6000))
        postgres = {s.database.server for s in _SERVERS} - {None}
        for cluster in postgres:
            print(f"--- PostgreSQL log tail ({cluster.log}) ---")
            print(cluster.log_tail(3000))
    # make_server's servers were stopped already (its teardown ran first); forget them.
    _SERVERS[:] = [s for s in _SERVERS if s not in _FUNCTION_SERVERS]
    _FUNCTION_SERVERS.clear()


@pytest.fixture
def make_server(tmp_path: Path, databases: Databases) -> Iterator[Callable[..., Server]]:
    """Build servers with extra ``GENYARD_*`` settings, each on a fresh database of the
    test's kind (``db=`` another server's ``.database`` to share one); every one is
    stopped afterwards."""
    servers: list[Server] = []

    def make(name: str = "server", *, db: FreshDatabase | None = None, **env: str) -> Server:
        server = Server(tmp_path / name, env, db or databases.new())
        servers.append(server)
        _SERVERS.append(server)
        _FUNCTION_SERVERS.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def module_server_factory(
    tmp_path_factory: pytest.TempPathFactory, module_databases: Databases
) -> Iterator[Callable[..., Server]]:
    """Servers shared by a module's tests (one set per database kind), started at once."""
    servers: list[Server] = []

    def make(**env: str) -> Server:
        server = Server(tmp_path_factory.mktemp("genyard"), env, module_databases.new())
        servers.append(server)
        _SERVERS.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()
        _SERVERS.remove(server)


@pytest.fixture
def cluster(postgres_server: PostgresServer, tmp_path: Path) -> Iterator[Cluster]:
    name = postgres_server.create_database()
    made = Cluster(tmp_path, postgres_server.url(name))
    try:
        yield made
    finally:
        made.stop()
        postgres_server.drop_database(name)
