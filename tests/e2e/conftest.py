"""Fixtures for the end-to-end suite (helpers live in ``e2e_support``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Server

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
    # make_server's servers were stopped already (its teardown ran first); forget them.
    _SERVERS[:] = [s for s in _SERVERS if s not in _FUNCTION_SERVERS]
    _FUNCTION_SERVERS.clear()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Build servers with extra ``GENYARD_*`` settings; every one is stopped afterwards."""
    servers: list[Server] = []

    def make(name: str = "server", **env: str) -> Server:
        server = Server(tmp_path / name, env)
        servers.append(server)
        _SERVERS.append(server)
        _FUNCTION_SERVERS.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def module_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def make(**env: str) -> Server:
        server = Server(tmp_path_factory.mktemp("genyard"), env)
        servers.append(server)
        _SERVERS.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()
        _SERVERS.remove(server)
