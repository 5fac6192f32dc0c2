"""A real HTTP server on 127.0.0.1 serving fixed files, for input file URLs.

It runs on the test's event loop (the in-process app's workers fetch from it through
the URL guard, over a real loopback connection) and records each path requested.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class FileServer:
    port: int = 0
    #: path -> (Content-Type or None for none, body)
    files: dict[str, tuple[str | None, bytes]] = field(default_factory=dict)
    requested: list[str] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            self.requested.append(path)
            found = self.files.get(path)
            if found is None:
                status, headers, body = "404 Not Found", {"Content-Type": "text/plain"}, b"no"
            else:
                content_type, body = found
                status = "200 OK"
                headers = {"Content-Type": content_type} if content_type else {}
            lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close"]
            lines += [f"{k}: {v}" for k, v in headers.items()]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def file_server(files: dict[str, tuple[str | None, bytes]]) -> AsyncIterator[FileServer]:
    server = FileServer(files=files)
    listener = await asyncio.start_server(server._handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()
        await listener.wait_closed()
