"""Credentials for the management API: a bearer token, or Basic auth as ``admin:<token>``
(the form OpenFaaS's and OpenWhisk's clients send).

``ManagementAuth`` checks them for every path under ``/v1/`` (and OpenFaaS's ``/system/``),
and for ``/metrics`` unless the settings open it (``FAASFLOW_METRICS_PUBLIC``), before
routing, so before anything reads or parses a body: an anonymous client gets 401 whatever
it sends. The routes declare the schemes (``BEARER``, ``BASIC``) only so that
OpenAPI shows them.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from fastapi.openapi.models import HTTPBase
from fastapi.security.base import SecurityBase
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.errors import Unauthorized
from pipeline.gateway.errors import error_response

ADMIN_USER = "admin"
MANAGEMENT_PREFIX = "/v1/"
GUARDED_PREFIXES = (MANAGEMENT_PREFIX, "/system/")  # /system/: OpenFaaS's management API
METRICS_PATH = "/metrics"


def presented_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return value.strip()
    if scheme == "basic":
        try:
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return password if user == ADMIN_USER else None
    return None


def check(expected: str | None, authorization: str | None) -> None:
    token = presented_token(authorization)
    if not expected or not token or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized("missing or wrong credentials: send 'Authorization: Bearer <token>'")


class ManagementAuth:
    """Answers 401 to a request under ``/v1/`` or ``/system/``, or for ``/metrics`` unless
    ``metrics_public``, without the management token, unread."""

    def __init__(self, app: ASGIApp, token: str | None, *, metrics_public: bool = False) -> None:
        self.app = app
        self.token = token
        self.metrics_public = metrics_public

    def guards(self, path: str) -> bool:
        return path.startswith(GUARDED_PREFIXES) or (
            path == METRICS_PATH and not self.metrics_public)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.guards(scope["path"]):
            try:
                check(self.token, Headers(scope=scope).get("authorization"))
            except Unauthorized as exc:
                await error_response(exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class Scheme(SecurityBase):
    """A way to authenticate, as OpenAPI shows it. As a dependency it does nothing: the
    check is ``ManagementAuth``'s (or, for a private function, the invoke route's)."""

    def __init__(self, name: str, scheme: str, description: str) -> None:
        self.model = HTTPBase(scheme=scheme, description=description)
        self.scheme_name = name

    async def __call__(self) -> None:
        return None


BEARER = Scheme("bearer", "bearer", "The management token: `Authorization: Bearer <token>`.")
BASIC = Scheme("basic", "basic", "User `admin`, password the management token (the form "
               "OpenFaaS and OpenWhisk clients send).")
