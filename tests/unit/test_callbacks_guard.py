"""The SSRF guard: which callback URLs may be reached, for each address class and for the
spellings that hide one (IPv4 inside IPv6, decimal, octal and hex numeric hosts)."""

from __future__ import annotations

import ipaddress

import pytest

from pipeline.callbacks.guard import Refused, allowed_addresses, check_url, endpoint, refusal
from pipeline.errors import InvalidRequest


@pytest.mark.parametrize(("address", "why"), [
    ("127.0.0.1", "loopback"),
    ("::1", "loopback"),
    ("169.254.169.254", "a cloud metadata address"),
    ("169.254.10.1", "link-local"),
    ("fe80::1", "link-local"),
    ("10.0.0.1", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.1", "private"),
    ("fd12:3456::1", "unique-local"),
    ("fd00:ec2::254", "a cloud metadata address"),
    ("224.0.0.251", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("100.64.0.1", "not a public address"),  # shared address space (CGNAT)
    ("100.100.100.200", "a cloud metadata address"),
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped IPv6
    ("::ffff:169.254.169.254", "a cloud metadata address"),
    ("64:ff9b::a9fe:a9fe", "a cloud metadata address"),  # NAT64 of 169.254.169.254
    ("2002:0a00:0001::1", "private"),  # 6to4 of 10.0.0.1
])
def test_an_address_that_is_not_public_is_refused_and_says_why(address: str, why: str) -> None:
    assert refusal(ipaddress.ip_address(address)) == why


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111",
                                     "::ffff:8.8.8.8"])
def test_a_public_address_is_allowed(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("host", ["2130706433", "0177.0.0.1", "0x7f.0.0.1", "0x7f000001",
                                  "127.1", "[::ffff:7f00:1]", "localhost"])
async def test_numeric_spellings_of_loopback_resolve_to_it_and_are_refused(host: str) -> None:
    with pytest.raises(Refused, match="loopback"):
        await check_url(f"http://{host}:8080/hook", allow_private=False)


async def test_the_setting_allows_private_addresses() -> None:
    where, addresses = await allowed_addresses("http://127.0.0.1:9/x", allow_private=True)

    assert where.origin == "http://127.0.0.1:9"
    assert addresses == [ipaddress.ip_address("127.0.0.1")]


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://a/",
                                 "example.com/path", "http:///nohost", "http://[::1/",
                                 "https://example.com:99999/", "http://x/" + "a" * 3000])
async def test_only_absolute_http_urls_are_taken(url: str) -> None:
    with pytest.raises(InvalidRequest):
        await check_url(url, allow_private=True)


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(Refused, match="does not resolve"):
        await check_url("http://no-such-host.invalid/", allow_private=True)


def test_origins_name_scheme_host_and_port() -> None:
    assert endpoint("HTTPS://Example.COM/a?b").origin == "https://example.com:443"
    assert endpoint("http://[::1]:8080/").origin == "http://[::1]:8080"
