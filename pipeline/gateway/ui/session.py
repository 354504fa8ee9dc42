"""The dashboard's session: a cookie that proves its holder typed the management token.

The cookie holds an HMAC of the token, never the token itself, and never travels in a URL:
``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page sends it) and
``Secure`` when the gateway is reached over HTTPS. Rotating the token ends every session.
Unsafe requests must also come from the gateway's own pages (their ``Origin``), so a form on
another site cannot act with a session even in a browser that ignores ``SameSite``.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "faasflow_session"
PATH = "/ui"
PURPOSE = b"faasflow dashboard session v1"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def session_value(token: str) -> str:
    return hmac.new(token.encode(), PURPOSE, hashlib.sha256).hexdigest()


def token_matches(token: str | None, typed: str) -> bool:
    return bool(token) and hmac.compare_digest(typed.strip().encode(), str(token).encode())


def signed_in(request: Request, token: str | None) -> bool:
    held = request.cookies.get(COOKIE, "")
    return bool(token) and bool(held) and hmac.compare_digest(held, session_value(str(token)))


def same_origin(request: Request) -> bool:
    """An unsafe request's ``Origin`` (or, without one, its ``Referer``) is this gateway."""
    if request.method in SAFE_METHODS:
        return True
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return False
    where = urlsplit(origin)
    return f"{where.scheme}://{where.netloc}" == f"{request.url.scheme}://{request.url.netloc}"


def open_session(response: Response, request: Request, token: str) -> None:
    response.set_cookie(COOKIE, session_value(token), path=PATH, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")


def close_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict")


def landing(next_page: str | None) -> str:
    """Where to go after signing in: a dashboard page, never another site (``//evil``)."""
    if next_page and next_page.startswith(PATH) and not next_page.startswith("//"):
        path = urlsplit(next_page)
        if not path.netloc and not path.scheme:
            return next_page
    return PATH + "/"
