"""The outbound URL guard: every URL genyard fetches or calls on a user's behalf.

How a request is made safe:

1. **Syntax** (:meth:`UrlGuard.check_syntax`, no DNS): http(s) only (https only with
   ``GENYARD_OUTBOUND_HTTPS_ONLY``), a host, no ``user@`` credentials, no whitespace,
   control characters or backslashes (parser differentials). URLs are parsed by the same
   parser (``httpx.URL``) that later builds the request.
2. **Address literals** (:meth:`UrlGuard.check_static`, no DNS): a host that is an IP
   address in any form (``[::ffff:10.0.0.1]``, ``2130706433``, ``0177.0.0.1``,
   ``0x7f.1``, ``127.1``) is judged as that address (see :mod:`genyard.net.addresses`).
3. **Resolution** (:meth:`UrlGuard.check`): a name is resolved once, by the injectable
   resolver (``socket.getaddrinfo`` in a thread by default); every address it returns
   must be allowed, and the first one is *pinned*.
4. **Pinned connection** (:meth:`UrlGuard.fetch`, :meth:`UrlGuard.post`): the request
   goes to a URL whose host is the pinned address, so httpx never resolves the name
   again (no DNS rebinding between check and connect). The original name travels in the
   ``Host`` header and, for https, in the ``sni_hostname`` request extension, which
   httpcore uses both as TLS SNI and as the name the certificate is verified against.
   Only public httpx APIs are involved; proxies from the environment are ignored
   (``trust_env=False``) because a proxy would connect on its own.
5. **Redirects** are followed by hand (at most ``max_redirects``), each target checked
   and resolved through steps 1-4 before any connection is made to it.
6. **Limits**: one total deadline (``GENYARD_OUTBOUND_TIMEOUT``) covers resolution,
   redirects and the body; the body is streamed and abandoned past ``max_bytes``
   (``GENYARD_OUTBOUND_MAX_BYTES``, counted after content decoding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from genyard.net.addresses import (
    Allowlist,
    IPAddress,
    refusal_reason,
)
from genyard.net.errors import FetchFailed, UrlRefused
from genyard.net.urls import DEFAULT_PORTS, Target, parse_url

if TYPE_CHECKING:
    from genyard.config import Settings

#: ``(host, port) -> addresses``; must not be called for address literals.
Resolver = Callable[[str, int], Sequence[str]]

MAX_REDIRECTS = 5
POST_BODY_LIMIT = 64 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "genyard"


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with ``socket.getaddrinfo`` (blocking: the guard runs it in a thread)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True, slots=True)
class ResolvedUrl:
    """A URL that passed the guard, with the address its connection is pinned to."""

    url: str
    scheme: str
    #: The host as sent in ``Host``/SNI: ASCII (IDNA) name, or the address literal.
    host: str
    port: int
    #: The pinned address the connection goes to.
    address: str
    #: Every address the name resolved to (all of them allowed).
    addresses: tuple[str, ...]
    #: Whether the host was written as an IP address.
    is_literal: bool

    @property
    def pinned_url(self) -> httpx.URL:
        return httpx.URL(self.url).copy_with(host=self.address)

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == DEFAULT_PORTS[self.scheme]:
            return host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class FetchedFile:
    content: bytes
    content_type: str | None
    final_url: str


@dataclass(frozen=True, slots=True)
class PostResponse:
    status_code: int
    headers: httpx.Headers
    #: The first bytes of the body (at most the ``body_limit`` given to ``post``).
    body: bytes
    url: str


class UrlGuard:
    """Validates, resolves and fetches outbound URLs; see the module docstring."""

    def __init__(
        self,
        *,
        allowlist: Allowlist | str = "",
        https_only: bool = False,
        max_bytes: int = 50 * 1024 * 1024,
        timeout: float = 10.0,
        ca_file: Path | None = None,
        resolver: Resolver | None = None,
        allowed_ports: frozenset[int] | None = None,
        max_redirects: int = MAX_REDIRECTS,
    ) -> None:
        self.allowlist = Allowlist.parse(allowlist) if isinstance(allowlist, str) else allowlist
        self.https_only = https_only
        self.max_bytes = max_bytes
        self.timeout = timeout
        if ca_file is not None and not Path(ca_file).is_file():
            raise ValueError(f"GENYARD_OUTBOUND_CA_FILE: {ca_file} is not a file")
        self.ca_file = ca_file
        self.resolver: Resolver = resolver or system_resolver
        self.allowed_ports = allowed_ports
        self.max_redirects = max_redirects
        self._ssl_context: ssl.SSLContext | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, resolver: Resolver | None = None) -> UrlGuard:
        return cls(
            allowlist=settings.outbound_allowlist,
            https_only=settings.outbound_https_only,
            max_bytes=settings.outbound_max_bytes,
            timeout=settings.outbound_timeout,
            ca_file=settings.outbound_ca_file,
            resolver=resolver,
        )

    # --- checks without connecting -----------------------------------------------------

    def _parse(self, url: str) -> Target:
        return parse_url(url, https_only=self.https_only, allowed_ports=self.allowed_ports)

    def check_syntax(self, url: str) -> None:
        """Refuse a URL that is malformed or not allowed by form alone (no DNS)."""
        self._parse(url)

    def check_static(self, url: str) -> None:
        """:meth:`check_syntax` plus the address checks for IP-literal hosts (no DNS).

        Suits submit time: names are judged when they are resolved, at delivery.
        """
        target = self._parse(url)
        if target.address is not None:
            reason = refusal_reason(target.address, self.allowlist)
            if reason is not None:
                raise UrlRefused(url, reason)

    async def check(self, url: str) -> ResolvedUrl:
        """Validate ``url`` and resolve its host once; no connection is made."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._check(url)
        except TimeoutError:
            raise FetchFailed(url, self._timeout_reason()) from None

    async def _check(self, url: str) -> ResolvedUrl:
        target = self._parse(url)
        if target.address is not None:
            addresses: list[IPAddress] = [target.address]
        else:
            addresses = await self._resolve(url, target)
        for address in addresses:
            host = None if target.address is not None else target.host
            reason = refusal_reason(address, self.allowlist, host=host)
            if reason is not None:
                raise UrlRefused(url, reason)
        return ResolvedUrl(
            url=target.url,
            scheme=target.scheme,
            host=target.host,
            port=target.port,
            address=str(addresses[0]),
            addresses=tuple(str(a) for a in addresses),
            is_literal=target.address is not None,
        )

    async def _resolve(self, url: str, target: Target) -> list[IPAddress]:
        try:
            found = await asyncio.to_thread(self.resolver, target.host, target.port)
        except OSError as exc:
            raise FetchFailed(url, f"could not resolve {target.host}: {exc}") from None
        addresses: list[IPAddress] = []
        for text in found:
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                raise FetchFailed(url, f"resolver returned {text!r}, not an address") from None
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise FetchFailed(url, f"{target.host} resolved to no address")
        return addresses

    # --- requests ---------------------------------------------------------------------

    def _timeout_reason(self) -> str:
        return f"took longer than {self.timeout:g} s (GENYARD_OUTBOUND_TIMEOUT)"

    def ssl_context(self) -> ssl.SSLContext:
        """Public CAs (certifi) plus ``GENYARD_OUTBOUND_CA_FILE`` when set."""
        if self._ssl_context is None:
            import certifi

            context = ssl.create_default_context(cafile=certifi.where())
            if self.ca_file is not None:
                context.load_verify_locations(cafile=str(self.ca_file))
            self._ssl_context = context
        return self._ssl_context

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            verify=self.ssl_context(),
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(self.timeout),
            headers={"User-Agent": USER_AGENT},
        )

    async def fetch(self, url: str, *, max_bytes: int | None = None) -> FetchedFile:
        """GET ``url`` (following checked redirects) and return its body, of at most
        ``max_bytes`` (default ``GENYARD_OUTBOUND_MAX_BYTES``)."""
        limit = max_bytes if max_bytes is not None else self.max_bytes
        setting = "GENYARD_OUTBOUND_MAX_BYTES" if limit == self.max_bytes else None
        try:
            async with asyncio.timeout(self.timeout), self._client() as client:
                current = url
                for hop in range(self.max_redirects + 1):
                    resolved = await self._check_hop(current, hop)
                    async with client.stream(
                        "GET",
                        resolved.pinned_url,
                        headers={"Host": resolved.host_header},
                        extensions=self._extensions(resolved),
                    ) as response:
                        location = response.headers.get("location")
                        if response.status_code in REDIRECT_STATUSES and location:
                            current = str(httpx.URL(resolved.url).join(location))
                            continue
                        if response.status_code >= 400:
                            raise FetchFailed(current, f"answered HTTP {response.status_code}")
                        content = await _read_limited(response, limit, current, setting)
                        return FetchedFile(
                            content, response.headers.get("content-type"), resolved.url
                        )
                raise FetchFailed(url, f"more than {self.max_redirects} redirects")
        except (TimeoutError, httpx.TimeoutException):
            raise FetchFailed(url, self._timeout_reason()) from None
        except httpx.HTTPError as exc:
            raise FetchFailed(url, f"{type(exc).__name__}: {exc}") from None

    async def post(
        self,
        url: str,
        *,
        content: bytes,
        headers: Mapping[str, str] | None = None,
        body_limit: int = POST_BODY_LIMIT,
        time_limit: float | None = None,
    ) -> PostResponse:
        """POST ``content`` to ``url`` (webhooks). Redirects are returned, not followed.
        ``time_limit`` replaces the guard's timeout for this call."""
        seconds = self.timeout if time_limit is None else time_limit
        try:
            async with asyncio.timeout(seconds), self._client() as client:
                resolved = await self._check(url)
                request_headers = {**(headers or {}), "Host": resolved.host_header}
                async with client.stream(
                    "POST",
                    resolved.pinned_url,
                    content=content,
                    headers=request_headers,
                    extensions=self._extensions(resolved),
                ) as response:
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) >= body_limit:
                            break
                    return PostResponse(
                        response.status_code,
                        response.headers,
                        bytes(body[:body_limit]),
                        resolved.url,
                    )
        except (TimeoutError, httpx.TimeoutException):
            reason = (
                self._timeout_reason() if time_limit is None else f"took longer than {seconds:g} s"
            )
            raise FetchFailed(url, reason) from None
        except httpx.HTTPError as exc:
            raise FetchFailed(url, f"{type(exc).__name__}: {exc}") from None

    @staticmethod
    def _extensions(resolved: ResolvedUrl) -> dict[str, str]:
        # Names go in SNI and certificate verification; an IP literal is verified as is.
        return {} if resolved.is_literal else {"sni_hostname": resolved.host}

    async def _check_hop(self, url: str, hop: int) -> ResolvedUrl:
        if hop == 0:
            return await self._check(url)
        try:
            return await self._check(url)
        except UrlRefused as exc:
            raise UrlRefused(url, f"redirect to {url} refused: {exc.reason}") from None


async def _read_limited(
    response: httpx.Response, limit: int, url: str, setting: str | None
) -> bytes:
    declared = response.headers.get("content-length", "")
    too_big = f"the limit is {limit} bytes" + (f" ({setting})" if setting else "")
    if declared.isdigit() and int(declared) > limit:
        raise FetchFailed(url, f"body is {declared} bytes; {too_big}")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            raise FetchFailed(url, f"body is larger than {limit} bytes; {too_big}")
    return bytes(body)
