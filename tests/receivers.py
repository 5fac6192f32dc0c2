"""Real HTTP(S) receivers on loopback for webhook and file-fetch tests.

A :class:`Receiver` is an asyncio server that records every request (with the time it
arrived) and answers from a script: ``receiver.answer = lambda request: Answer(...)``.
``async with receiver_on("127.0.0.1") as r`` runs one on the current loop (in-process
API tests); :class:`ThreadedReceiver` runs one on a loop of its own in a thread, for
tests that drive server processes synchronously.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import trustme


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when the request was read


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0  # seconds to wait before answering


@dataclass
class Receiver:
    host: str
    port: int = 0
    scheme: str = "http"
    requests: list[Request] = field(default_factory=list)
    answer: Callable[[Request], Answer] = lambda request: Answer()
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "/hook", host: str | None = None) -> str:
        return f"{self.scheme}://{host or self.host}:{self.port}{path}"

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Request]:
        """Wait until ``count`` requests arrived; return them all."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.url()} got {len(self.requests)} requests, expected {count}"
                )
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, 0.1)):
                    await self.arrived.wait()
        return list(self.requests)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = (await reader.readline()).decode()
            method, path, _ = line.split(" ", 2)
            headers: dict[str, str] = {}
            while (header := (await reader.readline()).decode().strip()) != "":
                name, _, value = header.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = Request(method, path, headers, body, time.monotonic())
            self.requests.append(request)
            self.arrived.set()
            answer = self.answer(request)
            if answer.delay:
                await asyncio.sleep(answer.delay)
            head = f"HTTP/1.1 {answer.status} X\r\nContent-Length: {len(answer.body)}\r\n"
            head += "Connection: close\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in answer.headers.items())
            writer.write(head.encode() + b"\r\n" + answer.body)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def receiver_on(
    host: str = "127.0.0.1", tls: ssl.SSLContext | None = None
) -> AsyncIterator[Receiver]:
    receiver = Receiver(host, scheme="https" if tls else "http")
    server = await asyncio.start_server(receiver._handle, host, 0, ssl=tls)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        server.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await server.wait_closed()


def tls_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    """A server TLS context with a certificate for ``names`` issued by ``ca``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


class ThreadedReceiver:
    """A :class:`Receiver` on its own event loop in a daemon thread."""

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.receiver: Receiver | None = None
        self._thread = threading.Thread(target=self._run, args=(host,), daemon=True)

    def _run(self, host: str) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main(host))

    async def _main(self, host: str) -> None:
        self._stop = asyncio.Event()
        async with receiver_on(host, self.tls) as receiver:
            self.receiver = receiver
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> Receiver:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the receiver did not start")
        assert self.receiver is not None
        return self.receiver

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Request]:
        assert self.receiver is not None
        future = asyncio.run_coroutine_threadsafe(self.receiver.wait_for(count, timeout), self.loop)
        return future.result(timeout + 5)


@contextlib.asynccontextmanager
async def file_server(files: dict[str, tuple[str | None, bytes]]) -> AsyncIterator[Receiver]:
    """A receiver serving fixed files: path -> (Content-Type or None for none, body);
    other paths answer 404."""

    def answer(request: Request) -> Answer:
        found = files.get(request.path)
        if found is None:
            return Answer(404, {"Content-Type": "text/plain"}, b"no")
        content_type, body = found
        return Answer(200, {"Content-Type": content_type} if content_type else {}, body)

    async with receiver_on("127.0.0.1") as receiver:
        receiver.answer = answer
        yield receiver
