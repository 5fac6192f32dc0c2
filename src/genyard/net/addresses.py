"""Address rules for the outbound URL guard: which IP addresses a fetch may reach.

Pure functions, no I/O: numeric host parsing (the ``inet_aton`` forms a resolver would
accept: ``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``), classification of IPv4
and IPv6 addresses (IPv4 embedded in IPv6 included) and the operator's allow-list.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWLIST_SETTING = "GENYARD_OUTBOUND_ALLOWLIST"

#: Cloud instance metadata services (AWS/GCP/Azure/OpenStack, AWS IPv6, Alibaba).
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("169.254.170.2"),
        ipaddress.ip_address("fd00:ec2::254"),
        ipaddress.ip_address("100.100.100.200"),
    }
)

_NAMED_RANGES: tuple[tuple[str, str], ...] = (
    ("100.64.0.0/10", "shared (CGNAT) address"),
    ("198.18.0.0/15", "benchmarking address"),
    ("2001:2::/48", "benchmarking address"),
    ("192.0.2.0/24", "documentation address"),
    ("198.51.100.0/24", "documentation address"),
    ("203.0.113.0/24", "documentation address"),
    ("2001:db8::/32", "documentation address"),
    ("3fff::/20", "documentation address"),
    ("192.0.0.0/24", "IETF protocol assignment address"),
    ("64:ff9b:1::/48", "local-use NAT64 address"),
)
_RANGES: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(net), reason) for net, reason in _NAMED_RANGES
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPAT = ipaddress.ip_network("::/96")

_NUMBER = re.compile(r"^(?:0[xX][0-9a-fA-F]*|[0-9]+)$")


class NumericHostError(ValueError):
    """A host that ends in a number but is no valid IPv4 address in any form."""


def _parse_number(part: str) -> int:
    if part[:2] in ("0x", "0X"):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        if any(c not in "01234567" for c in part):
            raise NumericHostError(f"{part!r} is not an octal number")
        return int(part, 8)
    return int(part, 10)


def parse_numeric_host(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a numeric host stands for, as ``inet_aton`` reads it.

    ``None`` for ordinary names. Like the URL standard, a host whose last label is a
    number must be a valid address: ``example.1`` or ``1.2.3.4.5`` raise
    :class:`NumericHostError` rather than being left to a resolver's interpretation.
    """
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels = labels[:-1]
    if not labels or not _NUMBER.match(labels[-1]):
        return None
    if len(labels) > 4 or not all(_NUMBER.match(label) for label in labels):
        raise NumericHostError(f"{host!r} ends in a number but is not an IPv4 address")
    numbers = [_parse_number(label) for label in labels]
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise NumericHostError(f"{host!r} is out of range for an IPv4 address")
    value = last
    for index, n in enumerate(head):
        value += n << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def parse_host_address(host: str) -> IPAddress | None:
    """The address an IP-literal host stands for (any numeric IPv4 form, or IPv6)."""
    if ":" in host:
        return ipaddress.IPv6Address(host.strip("[]"))
    return parse_numeric_host(host)


def _classify_plain(address: IPAddress) -> str | None:
    """Why a (non-embedding) address is refused, or ``None`` if it is public."""
    if address in METADATA_ADDRESSES:
        return "cloud metadata address"
    if address.is_unspecified:
        return "unspecified address"
    if address.is_loopback:
        return "loopback address"
    if address.is_link_local:
        return "link-local address"
    if address.is_multicast:
        return "multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address == ipaddress.IPv4Address(
        "255.255.255.255"
    ):
        return "broadcast address"
    for network, reason in _RANGES:
        if address.version == network.version and address in network:
            return reason
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "site-local address"
    if address.is_reserved:
        return "reserved address"
    if address.is_private:
        return "private address"
    if not address.is_global:
        return "non-public address"
    return None


def embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 address carries (mapped, compat, NAT64, 6to4, Teredo)."""
    if address.ipv4_mapped is not None:
        return "IPv4-mapped", address.ipv4_mapped
    if address in _NAT64:
        return "NAT64", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return "6to4", address.sixtofour
    if address.teredo is not None:
        return "Teredo", address.teredo[1]
    if address in _IPV4_COMPAT and int(address) > 1:
        return "IPv4-compatible", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


class Allowlist:
    """Addresses and networks an operator lets through (``GENYARD_OUTBOUND_ALLOWLIST``)."""

    def __init__(self, networks: Iterable[IPNetwork] = ()) -> None:
        self.networks = tuple(networks)

    @classmethod
    def parse(cls, text: str) -> Allowlist:
        networks = []
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError as exc:
                raise ValueError(
                    f"{ALLOWLIST_SETTING}: {item!r} is not an IP address or CIDR network"
                ) from exc
        return cls(networks)

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return False
        return any(address.version == net.version and address in net for net in self.networks)


def describe_refused(address: IPAddress, allowlist: Allowlist) -> str | None:
    """What makes ``address`` unreachable ("a loopback address"); ``None`` when allowed."""
    if address in allowlist:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "an address with a zone index"
        embedded = embedded_ipv4(address)
        if embedded is not None:
            form, inner = embedded
            if inner in allowlist:
                return None
            reason = _classify_plain(inner)
            if reason is not None:
                return f"the {form} form of {inner}, {_article(reason)} {reason}"
            if form in ("IPv4-mapped", "IPv4-compatible"):
                return None
    reason = _classify_plain(address)
    return None if reason is None else f"{_article(reason)} {reason}"


def _article(word: str) -> str:
    return "an" if word[0] in "aeiouIU" else "a"


def refusal_reason(
    address: IPAddress, allowlist: Allowlist, *, host: str | None = None
) -> str | None:
    """Why ``address`` may not be reached, naming the setting; ``None`` when it may.

    With ``host``, the message says the address is what that name resolved to.
    """
    description = describe_refused(address, allowlist)
    if description is None:
        return None
    subject = f"{address} is" if host is None else f"{host} resolves to {address},"
    return f"{subject} {description}; allow it with {ALLOWLIST_SETTING}"
