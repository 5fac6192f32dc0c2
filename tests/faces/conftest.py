"""Fixtures for the faces' tests: real ``genyard serve`` processes (tests/e2e's
``Server``), one per test or one per module, on a fresh database of the test's kind."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from e2e_support import Server

from postgres_server import Databases


@pytest.fixture
def make_server(tmp_path: Path, databases: Databases) -> Iterator[Callable[..., Server]]:
    """``make_server(name, **GENYARD_settings)``: a server (not started) on a fresh
    database; every one is stopped afterwards."""
    servers: list[Server] = []

    def make(name: str = "server", **env: str) -> Server:
        server = Server(tmp_path / name, env, databases.new())
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def module_server_factory(
    tmp_path_factory: pytest.TempPathFactory, module_databases: Databases
) -> Iterator[Callable[..., Server]]:
    """Started servers shared by a module's tests (one set per database kind)."""
    servers: list[Server] = []

    def make(**env: str) -> Server:
        server = Server(tmp_path_factory.mktemp("genyard"), env, module_databases.new())
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()
