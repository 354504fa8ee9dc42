"""The dashboard's session rules: what the cookie holds, where sign-in may land, which
unsafe requests count as the dashboard's own."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from pipeline.gateway.ui import session


def request(method: str = "GET", headers: dict[str, str] | None = None,
            cookie: str | None = None) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if cookie is not None:
        raw.append((b"cookie", f"{session.COOKIE}={cookie}".encode()))
    return Request({"type": "http", "method": method, "scheme": "http", "path": "/ui/",
                    "server": ("gw.local", 8080), "headers": raw, "query_string": b""})


def test_the_cookie_holds_a_mac_of_the_token_not_the_token() -> None:
    value = session.session_value("s3cret-token")
    assert "s3cret-token" not in value
    assert value == session.session_value("s3cret-token")
    assert value != session.session_value("another-token")


def test_a_session_is_signed_in_only_with_the_current_tokens_mac() -> None:
    good = session.session_value("tok")
    assert session.signed_in(request(cookie=good), "tok")
    assert not session.signed_in(request(cookie=good), "rotated")
    assert not session.signed_in(request(cookie=""), "tok")
    assert not session.signed_in(request(), "tok")
    assert not session.signed_in(request(cookie=good), None)


def test_the_typed_token_must_match_and_no_token_matches_nothing() -> None:
    assert session.token_matches("tok", " tok\n")
    assert not session.token_matches("tok", "to")
    assert not session.token_matches(None, "")


@pytest.mark.parametrize(("target", "lands"), [
    ("/ui/invocations?status=failed", "/ui/invocations?status=failed"),
    (None, "/ui/"),
    ("", "/ui/"),
    ("/v1/functions", "/ui/"),
    ("//evil.example/ui/", "/ui/"),
    ("https://evil.example/ui/", "/ui/"),
    ("/ui//evil.example", "/ui//evil.example"),  # a path on this gateway, not a host
])
def test_sign_in_lands_on_a_dashboard_page_only(target: str | None, lands: str) -> None:
    assert session.landing(target) == lands


@pytest.mark.parametrize(("method", "headers", "ours"), [
    ("GET", {}, True),
    ("POST", {"Origin": "http://gw.local:8080"}, True),
    ("POST", {"Referer": "http://gw.local:8080/ui/functions"}, True),
    ("POST", {"Origin": "http://evil.example"}, False),
    ("POST", {"Origin": "http://gw.local:8081"}, False),
    ("POST", {"Origin": "https://gw.local:8080"}, False),
    ("POST", {}, False),
    ("DELETE", {"Referer": "http://evil.example/ui/"}, False),
])
def test_unsafe_requests_must_come_from_the_gateways_own_pages(
        method: str, headers: dict[str, str], ours: bool) -> None:
    assert session.same_origin(request(method, headers)) is ours
