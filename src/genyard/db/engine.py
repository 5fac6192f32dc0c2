"""The database handle: ``read()`` and ``write()`` transactions, one way for both databases.

PostgreSQL runs on SQLAlchemy's async engine over asyncpg (native asyncio, no threads).

SQLite runs *inline*: statements execute on the event loop's thread through a plain
``sqlite3`` connection, wrapped in :class:`InlineConnection`, which looks like an
``AsyncConnection`` to the repositories. Measured (see bench/RESULTS.md): an async
driver hands every cursor call to a thread and back (3-4 hops a statement, ~17 a
write transaction), and with one writer at a time those hops, not SQLite, were the
ceiling; an indexed SQLite statement in WAL mode takes tens of microseconds, less
than one hop. So:

- every write transaction is ``BEGIN IMMEDIATE`` (it takes the write lock first, so a
  read-then-write can never fail half-way) and in-process writers queue on an asyncio
  lock;
- the loop never sleeps inside SQLite: ``busy_timeout`` is short, and when another
  process (the CLI) holds the write lock, ``write()`` retries ``BEGIN`` with an
  asynchronous back-off instead;
- reads are ``BEGIN DEFERRED`` on their own connections and run beside a writer (WAL).

On PostgreSQL, reads run in autocommit (no BEGIN/COMMIT round trips) and writes are
ordinary transactions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, CursorResult, Dialect, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

T = TypeVar("T")

# Short: a writer in another process is waited for with asyncio.sleep, not here.
SQLITE_BUSY_TIMEOUT_MS = 20
SQLITE_LOCK_WAIT_SECONDS = 30.0
_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
    "PRAGMA foreign_keys=ON",
    "PRAGMA temp_store=MEMORY",
)


class InlineConnection:
    """The part of ``AsyncConnection`` the repositories use, over a sync connection.

    The coroutines never suspend: each statement runs to completion on the caller's
    thread. Only ever used for SQLite (see the module docstring)."""

    def __init__(self, connection: Connection) -> None:
        self.sync_connection = connection

    @property
    def dialect(self) -> Dialect:
        return self.sync_connection.dialect

    async def execute(self, statement: Any, parameters: Any = None) -> CursorResult[Any]:
        return self.sync_connection.execute(statement, parameters)

    async def exec_driver_sql(self, sql: str, parameters: Any = None) -> CursorResult[Any]:
        return self.sync_connection.exec_driver_sql(sql, parameters)

    async def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(self.sync_connection, *args)


#: What repositories receive: an async connection (PostgreSQL) or an inline one (SQLite).
DbConnection = AsyncConnection | InlineConnection


def sqlite_path_url(url: str) -> str:
    """``sqlite+aiosqlite:///x`` or ``sqlite:///x`` -> ``sqlite:///x`` (the stdlib driver)."""
    scheme, sep, rest = url.partition("://")
    return "sqlite" + sep + rest if scheme.startswith("sqlite") else url


def _install_sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take transaction control away from the driver so that BEGIN is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def _is_locked(exc: OperationalError) -> bool:
    return "locked" in str(exc.orig).lower() or "busy" in str(exc.orig).lower()


class Database:
    """``async with db.read() as conn`` / ``async with db.write() as conn``."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._write_lock = asyncio.Lock()
        if self.is_sqlite:
            self._sqlite = create_engine(
                sqlite_path_url(url), echo=echo, pool_size=4, max_overflow=4
            )
            _install_sqlite_hooks(self._sqlite)
            self._sqlite_writer = self._sqlite.execution_options(sqlite_begin="IMMEDIATE")
        else:
            # Sized for a request's worth of overlapping transactions per concurrent
            # client; no pre-ping and no reset on return: both cost a round trip per
            # checkout, and every use is a begin() block that commits or rolls back.
            self._async = create_async_engine(
                url,
                echo=echo,
                pool_size=32,
                max_overflow=32,
                pool_recycle=1800,
                pool_reset_on_return=None,
            )
            # One-statement reads need no BEGIN/COMMIT round trips.
            self._async_reader = self._async.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[DbConnection]:
        """Reads: a deferred transaction on SQLite; autocommit statements on PostgreSQL
        (each sees the data committed when it starts, as in READ COMMITTED)."""
        if self.is_sqlite:
            with self._sqlite.begin() as conn:
                yield InlineConnection(conn)
            return
        async with self._async_reader.connect() as aconn:
            yield aconn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[DbConnection]:
        """A write transaction that commits on success and rolls back on error."""
        if not self.is_sqlite:
            async with self._async.begin() as aconn:
                yield aconn
            return
        async with self._write_lock:
            with self._sqlite_writer.connect() as conn:
                await self._begin_immediate(conn)
                try:
                    yield InlineConnection(conn)
                except BaseException:
                    conn.rollback()
                    raise
                conn.commit()

    @staticmethod
    async def _begin_immediate(conn: Connection) -> None:
        deadline = time.monotonic() + SQLITE_LOCK_WAIT_SECONDS
        delay = 0.002
        while True:
            try:
                conn.begin()
                return
            except OperationalError as exc:
                if not _is_locked(exc) or time.monotonic() > deadline:
                    raise
                conn.rollback()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)

    async def ping(self) -> None:
        async with self.read() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def dispose(self) -> None:
        if self.is_sqlite:
            self._sqlite.dispose()
        else:
            await self._async.dispose()
