"""The outbound URL guard: refusals without connecting, and real fetches over loopback.

No test here sends traffic beyond loopback or resolves a made-up name through DNS:
every guard gets a substituted resolver, and servers listen on 127.0.0.1/127.0.0.2.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme

from genyard.config import Settings
from genyard.net import FetchFailed, UrlGuard, UrlRefused
from genyard.net.addresses import parse_numeric_host
from genyard.services.predictions import _check_webhook

ALLOW = "allow it with GENYARD_OUTBOUND_ALLOWLIST"

#: Made-up names and what the substituted resolver answers for them.
NAMES = {
    "private.test": ["10.0.0.5"],
    "mixed.test": ["93.184.215.14", "10.0.0.7"],
    "metadata.test": ["169.254.169.254"],
    "mapped.test": ["::ffff:192.168.0.1"],
    "public.test": ["93.184.215.14", "2606:2800:220:1::1"],
    "pinned.test": ["127.0.0.1"],
    "other.test": ["127.0.0.1"],
    "localhost": ["127.0.0.1", "::1"],
}


class FakeResolver:
    """Answers from :data:`NAMES`; any other name fails the test (no real DNS)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        if host not in NAMES:
            raise AssertionError(f"unexpected resolution of {host!r}")
        return NAMES[host]


def guard(**kwargs: object) -> tuple[UrlGuard, FakeResolver]:
    resolver = FakeResolver()
    return UrlGuard(resolver=resolver, **kwargs), resolver  # type: ignore[arg-type]


HOSTILE: list[tuple[str, str]] = [
    ("http://10.0.0.1/", f"10.0.0.1 is a private address; {ALLOW}"),
    ("http://10.255.255.255:8080/x", "10.255.255.255 is a private address"),
    ("http://172.16.0.1/", "172.16.0.1 is a private address"),
    ("http://172.31.255.254/", "172.31.255.254 is a private address"),
    ("http://192.168.1.1/", "192.168.1.1 is a private address"),
    ("http://127.0.0.1/", f"127.0.0.1 is a loopback address; {ALLOW}"),
    ("http://127.255.0.9:22/", "127.255.0.9 is a loopback address"),
    ("http://0.0.0.0/", "0.0.0.0 is an unspecified address"),
    ("http://0/", "0.0.0.0 is an unspecified address"),
    ("http://[::1]/", "::1 is a loopback address"),
    ("http://[::]/", ":: is an unspecified address"),
    ("http://[::ffff:10.0.0.1]/", "IPv4-mapped form of 10.0.0.1, a private address"),
    ("http://[::ffff:127.0.0.1]:80/", "IPv4-mapped form of 127.0.0.1, a loopback address"),
    ("http://[::ffff:169.254.169.254]/", "IPv4-mapped form of 169.254.169.254, a cloud"),
    ("http://[::127.0.0.1]/", "IPv4-compatible form of 127.0.0.1, a loopback address"),
    ("http://[64:ff9b::a00:1]/", "NAT64 form of 10.0.0.1, a private address"),
    ("http://[64:ff9b:1::1]/", "local-use NAT64 address"),
    ("http://[2002:a00:1::]/", "6to4 form of 10.0.0.1, a private address"),
    ("http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/", "Teredo form of 10.0.0.1"),
    ("http://[fe80::1]/", "fe80::1 is a link-local address"),
    ("http://[fe80::1%25eth0]/", "zone index"),
    ("http://[fc00::1]/", "fc00::1 is a private address"),
    ("http://[fd12:3456::1]/", "fd12:3456::1 is a private address"),
    ("http://[fec0::1]/", "fec0::1 is a site-local address"),
    ("http://[ff02::1]/", "ff02::1 is a multicast address"),
    ("http://[2001:db8::1]/", "2001:db8::1 is a documentation address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
    ("http://169.254.1.1/", "169.254.1.1 is a link-local address"),
    ("http://100.100.100.200/", "100.100.100.200 is a cloud metadata address"),
    ("http://[fd00:ec2::254]/", "fd00:ec2::254 is a cloud metadata address"),
    ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
    ("http://239.255.255.250/", "239.255.255.250 is a multicast address"),
    ("http://255.255.255.255/", "255.255.255.255 is a broadcast address"),
    ("http://240.0.0.1/", "240.0.0.1 is a reserved address"),
    ("http://100.64.0.1/", "100.64.0.1 is a shared (CGNAT) address"),
    ("http://198.18.0.1/", "198.18.0.1 is a benchmarking address"),
    ("http://192.0.2.10/", "192.0.2.10 is a documentation address"),
    ("http://203.0.113.5/", "203.0.113.5 is a documentation address"),
    # numeric hosts are the addresses they spell
    ("http://2130706433/", "127.0.0.1 is a loopback address"),
    ("http://0177.0.0.1/", "127.0.0.1 is a loopback address"),
    ("http://0x7f000001/", "127.0.0.1 is a loopback address"),
    ("http://0x7f.1/", "127.0.0.1 is a loopback address"),
    ("http://127.1/", "127.0.0.1 is a loopback address"),
    ("http://0xa.0.0.1:81/", "10.0.0.1 is a private address"),
    ("http://012.0x0.00.01/", "10.0.0.1 is a private address"),
    ("http://167772161./", "10.0.0.1 is a private address"),
    ("http://1.2.3.4.5/", "ends in a number but is not an IPv4 address"),
    ("http://example.1/", "ends in a number but is not an IPv4 address"),
    ("http://256.0.0.1/", "out of range"),
    ("http://0x100000000/", "out of range"),
    ("http://08.0.0.1/", "not an octal number"),
    # form
    ("http://user@public.test/", "credentials (user@host)"),
    ("http://user:pw@public.test/", "credentials (user@host)"),
    ("http://@public.test/", "credentials (user@host)"),
    ("ftp://public.test/file", "scheme 'ftp' is not allowed"),
    ("file:///etc/passwd", "scheme 'file' is not allowed"),
    ("gopher://public.test:70/_x", "scheme 'gopher' is not allowed"),
    ("javascript:alert(1)", "scheme 'javascript' is not allowed"),
    ("dict://public.test:11211/", "scheme 'dict' is not allowed"),
    ("//public.test/x", "must be an absolute http(s) URL"),
    ("not a url", "whitespace"),
    ("https://", "with a host"),
    ("http://public.test\\@127.0.0.1/", "backslashes"),
    ("http://public.test/\r\nX: y", "control characters"),
    ("http://pub%6cic.test/", "percent-escapes"),
    ("http://public.test:0/", "port 0"),
    ("http://public.test:99999/", "not a valid URL"),
    ("http://" + "a" * 2050 + ".test/", "longer than 2048"),
    # names, judged by what they resolve to
    ("http://private.test/", f"private.test resolves to 10.0.0.5, a private address; {ALLOW}"),
    ("https://mixed.test/", "mixed.test resolves to 10.0.0.7, a private address"),
    ("http://metadata.test/", "resolves to 169.254.169.254, a cloud metadata address"),
    ("http://mapped.test/", "IPv4-mapped form of 192.168.0.1, a private address"),
    ("http://localhost/", "localhost resolves to 127.0.0.1, a loopback address"),
]


@pytest.mark.parametrize(("url", "reason"), HOSTILE)
async def test_hostile_urls_are_refused_with_a_reason(url: str, reason: str) -> None:
    g, _ = guard()
    with pytest.raises(UrlRefused) as refused:
        await g.check(url)
    assert reason in refused.value.reason
    with pytest.raises(UrlRefused):
        await g.fetch(url)


def test_the_corpus_is_large() -> None:
    assert len(HOSTILE) >= 30


async def test_https_only_refuses_http() -> None:
    g, _ = guard(https_only=True)
    with pytest.raises(UrlRefused, match="GENYARD_OUTBOUND_HTTPS_ONLY"):
        await g.check("http://public.test/")
    assert (await g.check("https://public.test/")).scheme == "https"


async def test_ports_are_any_unless_configured() -> None:
    g, _ = guard()
    assert (await g.check("http://public.test:6379/")).port == 6379
    g, _ = guard(allowed_ports=frozenset({443}))
    with pytest.raises(UrlRefused, match="port 6379 is not allowed"):
        await g.check("https://public.test:6379/")
    assert (await g.check("https://public.test/")).port == 443


async def test_public_name_resolves_once_and_pins_the_first_address() -> None:
    g, resolver = guard()
    resolved = await g.check("https://Public.TEST/a?b=1")
    assert resolver.calls == [("public.test", 443)]
    assert resolved.address == "93.184.215.14"
    assert resolved.addresses == ("93.184.215.14", "2606:2800:220:1::1")
    assert str(resolved.pinned_url) == "https://93.184.215.14/a?b=1"
    assert resolved.host_header == "public.test"


async def test_literals_never_reach_the_resolver() -> None:
    g, resolver = guard()
    resolved = await g.check("http://0x5d.0xb8.0xd7.0x0e:8080/x")
    assert (resolved.address, resolved.host_header) == ("93.184.215.14", "93.184.215.14:8080")
    await g.check("http://[2606:2800:220:1::1]/")
    assert resolver.calls == []


async def test_resolver_failures_are_fetch_failures() -> None:
    def broken(host: str, port: int) -> list[str]:
        raise OSError("no such name")

    with pytest.raises(FetchFailed, match=r"could not resolve nowhere\.test"):
        await UrlGuard(resolver=broken).check("http://nowhere.test/")
    with pytest.raises(FetchFailed, match="no address"):
        await UrlGuard(resolver=lambda h, p: []).check("http://nowhere.test/")


async def test_allowlist_lets_listed_addresses_through() -> None:
    g, _ = guard(allowlist="127.0.0.1/32, 10.1.0.0/16")
    assert (await g.check("http://127.0.0.1:9/")).address == "127.0.0.1"
    assert (await g.check("http://2130706433/")).address == "127.0.0.1"
    assert (await g.check("http://[::ffff:127.0.0.1]/")).address == "::ffff:7f00:1"
    assert (await g.check("http://10.1.2.3/")).address == "10.1.2.3"
    assert (await g.check("http://pinned.test/")).address == "127.0.0.1"
    for url, reason in [
        ("http://127.0.0.2/", "127.0.0.2 is a loopback"),
        ("http://10.2.0.1/", "10.2.0.1 is a private"),
        ("http://localhost/", "localhost resolves to ::1, a loopback"),
    ]:
        with pytest.raises(UrlRefused, match=reason):
            await g.check(url)


def test_allowlist_and_ca_file_errors_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="GENYARD_OUTBOUND_ALLOWLIST: 'not-an-ip'"):
        UrlGuard(allowlist="10.0.0.0/8,not-an-ip")
    with pytest.raises(ValueError, match="GENYARD_OUTBOUND_CA_FILE"):
        UrlGuard(ca_file=tmp_path / "missing.pem")


def test_from_settings_reads_the_outbound_settings(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    settings = Settings(
        outbound_allowlist="127.0.0.1",
        outbound_https_only=True,
        outbound_max_bytes=123,
        outbound_timeout=2.5,
        outbound_ca_file=ca,
    )
    g = UrlGuard.from_settings(settings)
    assert [str(n) for n in g.allowlist.networks] == ["127.0.0.1/32"]
    assert (g.https_only, g.max_bytes, g.timeout, g.ca_file) == (True, 123, 2.5, ca)


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1.258", "10.1.1.2"),
        ("0", "0.0.0.0"),
        ("1.2.3.4.", "1.2.3.4"),
        ("example.test", None),
        ("1x.test", None),
    ],
)
def test_numeric_hosts_parse_like_inet_aton(host: str, address: str | None) -> None:
    expected = ipaddress.IPv4Address(address) if address else None
    assert parse_numeric_host(host) == expected


def test_check_static_judges_literals_without_dns() -> None:
    g = UrlGuard(resolver=lambda h, p: pytest.fail("check_static must not resolve"))
    g.check_static("https://hooks.example.test/h")
    g.check_syntax("http://127.0.0.1/")
    with pytest.raises(UrlRefused, match=f"127.0.0.1 is a loopback address; {ALLOW}"):
        g.check_static("http://0x7f.1/")
    UrlGuard(allowlist="127.0.0.1").check_static("http://127.0.0.1/")


def test_webhooks_are_checked_at_submit() -> None:
    g = UrlGuard(resolver=lambda h, p: pytest.fail("submit must not resolve"))
    assert _check_webhook(g, "https://hooks.example.test/h", None, "webhook") == []
    [error] = _check_webhook(g, "http://[::ffff:10.0.0.1]/h", None, "webhook")
    assert error.field == "webhook"
    assert "GENYARD_OUTBOUND_ALLOWLIST" in error.message
    [error] = _check_webhook(g, "ftp://hooks.example.test/h", None, "webhook_url")
    assert (error.field, error.message) == (
        "webhook_url",
        "scheme 'ftp' is not allowed; only http and https are",
    )


# --- a real loopback server ------------------------------------------------------------


@dataclass
class Server:
    port: int
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    connections: int = 0
    routes: dict[str, Callable[[Server], tuple[int, dict[str, str], bytes]]] = field(
        default_factory=dict
    )
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def _serve(
    host: str, ssl_context: ssl.SSLContext | None = None
) -> tuple[Server, asyncio.Server]:
    server = Server(port=0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.connections += 1
        try:
            line = (await reader.readline()).decode()
            method, path, _ = line.split(" ", 2)
            headers: dict[str, str] = {}
            while (header := (await reader.readline()).decode().strip()) != "":
                name, _, value = header.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            server.requests.append((method, path, headers, body))
            if path == "/slow":
                await asyncio.wait_for(server.stop.wait(), 5)
            if path == "/drip":
                writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                for _ in range(100):
                    writer.write(b"x" * 1000)
                    await writer.drain()
                    await asyncio.sleep(0.05)
                return
            if path == "/chunked-big":
                writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"y" * 5000)
                await writer.drain()
                return
            status, extra, payload = server.routes[path](server)
            head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in extra.items())
            writer.write(head.encode() + b"\r\n" + payload)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError, ValueError):
            pass
        finally:
            writer.close()

    listener = await asyncio.start_server(handle, host, 0, ssl=ssl_context)
    server.port = listener.sockets[0].getsockname()[1]
    return server, listener


def _routes(other_port: int) -> dict[str, Callable[[Server], tuple[int, dict[str, str], bytes]]]:
    return {
        "/file.png": lambda s: (200, {"Content-Type": "image/png"}, b"\x89PNG-bytes"),
        "/host": lambda s: (
            200,
            {"Content-Type": "text/plain"},
            s.requests[-1][2]["host"].encode(),
        ),
        "/big": lambda s: (200, {}, b"z" * 5000),
        "/missing": lambda s: (404, {}, b"no"),
        "/redirect": lambda s: (302, {"Location": "/file.png"}, b""),
        "/redirect-away": lambda s: (
            302,
            {"Location": f"http://127.0.0.2:{other_port}/file.png"},
            b"",
        ),
        "/redirect-name": lambda s: (301, {"Location": f"http://private.test:{s.port}/"}, b""),
        "/loop": lambda s: (307, {"Location": "/loop"}, b""),
        "/hook": lambda s: (201, {"X-Seen": s.requests[-1][2]["host"]}, b"ok:" + s.requests[-1][3]),
    }


@pytest.fixture
async def servers() -> AsyncIterator[tuple[Server, Server]]:
    """A server on 127.0.0.1 (allow-listed) and a decoy on 127.0.0.2 (never allowed)."""
    decoy, decoy_listener = await _serve("127.0.0.2")
    decoy.routes = _routes(decoy.port)
    main, listener = await _serve("127.0.0.1")
    main.routes = _routes(decoy.port)
    yield main, decoy
    for server, lst in ((main, listener), (decoy, decoy_listener)):
        server.stop.set()
        lst.close()
        await lst.wait_closed()


def loopback_guard(**kwargs: object) -> tuple[UrlGuard, FakeResolver]:
    return guard(allowlist="127.0.0.1/32", **kwargs)


async def test_fetch_returns_bytes_and_content_type(servers: tuple[Server, Server]) -> None:
    main, _ = servers
    g, _ = loopback_guard()
    got = await g.fetch(f"http://127.0.0.1:{main.port}/file.png")
    assert (got.content, got.content_type) == (b"\x89PNG-bytes", "image/png")
    assert got.final_url == f"http://127.0.0.1:{main.port}/file.png"
    with pytest.raises(FetchFailed, match="HTTP 404"):
        await g.fetch(f"http://127.0.0.1:{main.port}/missing")


async def test_oversize_bodies_fail(servers: tuple[Server, Server]) -> None:
    main, _ = servers
    g, _ = loopback_guard(max_bytes=4096)
    assert len((await g.fetch(f"http://127.0.0.1:{main.port}/big", max_bytes=5000)).content) == 5000
    with pytest.raises(
        FetchFailed,
        match=r"body is 5000 bytes; the limit is 4096 bytes \(GENYARD_OUTBOUND_MAX_BYTES\)",
    ):
        await g.fetch(f"http://127.0.0.1:{main.port}/big")
    # a caller's own, lower limit (a file field's max_bytes) names no setting
    with pytest.raises(FetchFailed, match=r"body is 5000 bytes; the limit is 100 bytes$"):
        await g.fetch(f"http://127.0.0.1:{main.port}/big", max_bytes=100)
    # no Content-Length: the stream is cut once past the limit
    with pytest.raises(FetchFailed, match="larger than 4096 bytes"):
        await g.fetch(f"http://127.0.0.1:{main.port}/chunked-big")


async def test_slow_responses_time_out(servers: tuple[Server, Server]) -> None:
    main, _ = servers
    g, _ = loopback_guard(timeout=0.3)
    loop = asyncio.get_running_loop()
    for path in ("/slow", "/drip"):
        started = loop.time()
        with pytest.raises(
            FetchFailed, match=r"took longer than 0.3 s \(GENYARD_OUTBOUND_TIMEOUT\)"
        ):
            await g.fetch(f"http://127.0.0.1:{main.port}{path}")
        assert loop.time() - started < 2


async def test_redirects_are_followed_and_rechecked(servers: tuple[Server, Server]) -> None:
    main, decoy = servers
    g, resolver = loopback_guard()
    got = await g.fetch(f"http://127.0.0.1:{main.port}/redirect")
    assert got.content == b"\x89PNG-bytes"
    assert got.final_url == f"http://127.0.0.1:{main.port}/file.png"
    assert [r[1] for r in main.requests] == ["/redirect", "/file.png"]

    main.requests.clear()
    with pytest.raises(UrlRefused) as refused:
        await g.fetch(f"http://127.0.0.1:{main.port}/redirect-away")
    assert refused.value.reason == (
        f"redirect to http://127.0.0.2:{decoy.port}/file.png refused: "
        f"127.0.0.2 is a loopback address; {ALLOW}"
    )
    assert [r[1] for r in main.requests] == ["/redirect-away"]
    assert decoy.connections == 0

    with pytest.raises(UrlRefused, match=r"refused: private\.test resolves to 10\.0\.0\.5"):
        await g.fetch(f"http://127.0.0.1:{main.port}/redirect-name")
    assert resolver.calls == [("private.test", main.port)]

    main.requests.clear()
    with pytest.raises(FetchFailed, match="more than 5 redirects"):
        await g.fetch(f"http://127.0.0.1:{main.port}/loop")
    assert len(main.requests) == 6


async def test_connections_are_pinned_to_the_resolved_address(
    servers: tuple[Server, Server],
) -> None:
    main, _ = servers
    g, resolver = loopback_guard()
    got = await g.fetch(f"http://pinned.test:{main.port}/host")
    assert got.content == f"pinned.test:{main.port}".encode()
    assert got.final_url == f"http://pinned.test:{main.port}/host"
    assert resolver.calls == [("pinned.test", main.port)]
    assert main.connections == 1


async def test_post_sends_the_body_and_returns_the_answer(servers: tuple[Server, Server]) -> None:
    main, decoy = servers
    g, resolver = loopback_guard()
    answer = await g.post(
        f"http://pinned.test:{main.port}/hook",
        content=b'{"id": 1}',
        headers={"Content-Type": "application/json"},
        body_limit=5,
    )
    assert (answer.status_code, answer.headers["x-seen"], answer.body) == (
        201,
        f"pinned.test:{main.port}",
        b'ok:{"',
    )
    method, _, headers, body = main.requests[-1]
    assert (method, headers["content-type"], body) == ("POST", "application/json", b'{"id": 1}')
    assert resolver.calls == [("pinned.test", main.port)]
    with pytest.raises(UrlRefused, match=r"127\.0\.0\.2 is a loopback address"):
        await g.post(f"http://127.0.0.2:{decoy.port}/hook", content=b"x")
    assert decoy.connections == 0


# --- HTTPS to a private server, verified through the pinned connection ----------------


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[Server, Path]]:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("pinned.test").configure_cert(context)
    server, listener = await _serve("127.0.0.1", context)
    server.routes = _routes(0)
    yield server, ca_file
    server.stop.set()
    listener.close()
    await listener.wait_closed()


async def test_https_to_a_private_ca_verifies_the_name(tls_server: tuple[Server, Path]) -> None:
    server, ca_file = tls_server
    g, resolver = loopback_guard(ca_file=ca_file)
    got = await g.fetch(f"https://pinned.test:{server.port}/host")
    assert got.content == f"pinned.test:{server.port}".encode()
    assert resolver.calls == [("pinned.test", server.port)]
    # the certificate is checked against the name, not the address we connected to
    with pytest.raises(FetchFailed, match="CERTIFICATE_VERIFY_FAILED"):
        await g.fetch(f"https://other.test:{server.port}/host")
    with pytest.raises(FetchFailed, match="CERTIFICATE_VERIFY_FAILED"):
        await g.fetch(f"https://127.0.0.1:{server.port}/host")
    # without GENYARD_OUTBOUND_CA_FILE the private CA is not trusted
    g, _ = loopback_guard()
    with pytest.raises(FetchFailed, match="CERTIFICATE_VERIFY_FAILED"):
        await g.fetch(f"https://pinned.test:{server.port}/host")
    assert [r[1] for r in server.requests] == ["/host"]
