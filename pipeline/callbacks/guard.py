"""The SSRF guard: callback and sink URLs may only reach public addresses.

A URL is refused unless it is ``http`` or ``https`` and every address its host resolves to
is global unicast: loopback, link-local (cloud metadata at 169.254.169.254 among them),
private, unique-local, multicast, unspecified, shared (CGNAT, Alibaba's metadata) and
reserved ranges are refused, as are IPv4 addresses hidden in IPv6 (``::ffff:127.0.0.1``,
NAT64, 6to4). Numeric hosts in decimal, octal or hex (``2130706433``, ``0177.1``) are read
by the system resolver exactly as a connection would read them, then checked.

The check runs twice: when the URL is given (the API answers 422), and at every delivery
on the address actually connected to (``pipeline.callbacks.sender`` resolves once, checks,
and connects to that IP), so a name that resolves elsewhere later (DNS rebinding) cannot
reach inside. ``FAASFLOW_CALLBACKS_ALLOW_PRIVATE`` lifts the address rule, not the scheme.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from pipeline.errors import InvalidRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
SCHEMES = {"http": 80, "https": 443}
MAX_URL_LENGTH = 2048
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
            ipaddress.ip_address("100.100.100.200")}
NAT64 = ipaddress.ip_network("64:ff9b::/96")
UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")


class Refused(InvalidRequest):
    """A callback or sink URL that may not be reached."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a URL points: its scheme, host as written, and port."""

    scheme: str
    host: str
    port: int

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def endpoint(url: str) -> Endpoint:
    """The URL's endpoint, or ``Refused`` for anything but an absolute http(s) URL."""
    if len(url) > MAX_URL_LENGTH:
        raise Refused(f"a callback URL is at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused(f"invalid URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise Refused(f"{url!r}: only http and https URLs are allowed")
    if not parts.hostname:
        raise Refused(f"{url!r}: the URL has no host")
    return Endpoint(scheme, parts.hostname.lower(), port or SCHEMES[scheme])


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries: mapped, 6to4 or NAT64 (each reaches it)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: Address) -> str | None:
    """Why ``address`` may not be reached, or None if it is public."""
    if isinstance(address, ipaddress.IPv6Address) and (inner := embedded_ipv4(address)):
        return refusal(inner)
    checks = (
        (address in METADATA, "a cloud metadata address"),
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (isinstance(address, ipaddress.IPv6Address) and address in UNIQUE_LOCAL, "unique-local"),
        (address.is_private, "private"),
        (not address.is_global, "not a public address"),
    )
    return next((why for refused, why in checks if refused), None)



async def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to, as the connection would resolve it."""
    loop = asyncio.get_running_loop()
    try:
        found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Refused(f"{host!r} does not resolve: {exc}") from None
    addresses: list[Address] = []
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


async def allowed_addresses(url: str, allow_private: bool) -> tuple[Endpoint, list[Address]]:
    """The URL's endpoint and the addresses it may be reached at: all it resolves to, or
    ``Refused`` if any of them is not public (a name with one private address is refused
    whole, rather than reached on whichever address a connection happens to pick)."""
    where = endpoint(url)
    addresses = await resolve(where.host, where.port)
    if not allow_private:
        for address in addresses:
            if why := refusal(address):
                raise Refused(f"{url!r} resolves to {address}, {why}: refused (set "
                              "FAASFLOW_CALLBACKS_ALLOW_PRIVATE=true to allow it)")
    return where, addresses


async def check_url(url: str, allow_private: bool) -> str:
    """``url`` if a callback or sink may be sent to it, else ``Refused`` (an ``InvalidRequest``:
    422 at the API)."""
    await allowed_addresses(url, allow_private)
    return url
