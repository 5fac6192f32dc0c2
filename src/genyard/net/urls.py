"""URL parsing for the outbound guard: one strict reading of a URL, no I/O.

The URL is read by ``urllib.parse`` and by ``httpx.URL`` (the parser that builds the
request); a URL they disagree on is refused. Numeric IPv4 forms (``127.1``,
``0x7f.1``, ``0177.0.0.1``, ``2130706433``) are rewritten to the dotted quad they mean.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from genyard.net.addresses import IPAddress, NumericHostError, parse_host_address
from genyard.net.errors import UrlRefused

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-._")


@dataclass(frozen=True, slots=True)
class Target:
    """A URL that passed the syntax checks: its parts as the request will use them."""

    url: str
    scheme: str
    host: str
    port: int
    address: IPAddress | None


def _idna(host: str) -> str:
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return ""


def _same_address(host: str, address: IPAddress) -> bool:
    try:
        return ipaddress.ip_address(host) == address
    except ValueError:
        return False


def parse_url(
    url: str, *, https_only: bool = False, allowed_ports: frozenset[int] | None = None
) -> Target:
    """Parse and check ``url`` by form alone; raises :class:`UrlRefused`."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(url, f"URL is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url) or "\\" in url:
        raise UrlRefused(url, "URL contains whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
        explicit_port = parts.port
    except ValueError as exc:
        raise UrlRefused(url, f"not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        if not scheme:
            raise UrlRefused(url, "must be an absolute http(s) URL")
        raise UrlRefused(url, f"scheme {scheme!r} is not allowed; only http and https are")
    if https_only and scheme == "http":
        raise UrlRefused(
            url, "plain http is refused while GENYARD_OUTBOUND_HTTPS_ONLY is on; use https"
        )
    if "@" in parts.netloc:
        raise UrlRefused(url, "URLs with credentials (user@host) are refused")
    raw_host = parts.hostname or ""
    port = DEFAULT_PORTS[scheme] if explicit_port is None else explicit_port
    if port == 0:
        raise UrlRefused(url, "port 0 cannot be connected to")
    if not raw_host:
        raise UrlRefused(url, "must be an absolute http(s) URL with a host")
    if "%" in raw_host:
        raise UrlRefused(url, "hosts with percent-escapes or IPv6 zone indexes are refused")
    try:
        address = parse_host_address(raw_host)
    except (NumericHostError, ValueError) as exc:
        raise UrlRefused(url, f"host is not a valid address: {exc}") from None
    if address is not None and ":" not in raw_host:
        # Numeric forms (127.1, 0x7f.1, 0177.0.0.1) become the dotted quad they mean.
        rewritten = parts._replace(netloc=f"{address}:{port}").geturl()
    else:
        rewritten = url
    try:
        parsed = httpx.URL(rewritten)
    except (httpx.InvalidURL, ValueError) as exc:
        raise UrlRefused(url, f"not a valid URL ({exc})") from None
    host = parsed.raw_host.decode("ascii").lower()
    if address is not None:
        same = _same_address(host, address)
    else:
        same = ":" not in host and host == _idna(raw_host)
    if not same or parsed.scheme != scheme or parsed.userinfo:
        raise UrlRefused(url, "URL is ambiguous (parsers disagree on its host)")
    if address is None and not set(host) <= _NAME_CHARS:
        raise UrlRefused(url, f"host {host!r} contains characters a host name cannot have")
    if allowed_ports is not None and port not in allowed_ports:
        allowed = ", ".join(str(p) for p in sorted(allowed_ports))
        raise UrlRefused(url, f"port {port} is not allowed (allowed: {allowed})")
    if address is not None:
        host = str(address)
    return Target(str(parsed), scheme, host, port, address)
