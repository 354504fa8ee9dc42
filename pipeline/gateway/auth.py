"""Credentials for the management API: a bearer token, or Basic auth as ``admin:<token>``
(the form OpenFaaS's and OpenWhisk's clients send)."""

from __future__ import annotations

import base64
import binascii
import hmac

from fastapi import Request

from pipeline.errors import Unauthorized

ADMIN_USER = "admin"


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


def check(expected: str, authorization: str | None) -> None:
    token = presented_token(authorization)
    if not expected or not token or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized("missing or wrong credentials: send 'Authorization: Bearer <token>'")


async def require_token(request: Request) -> None:
    """FastAPI dependency for the management routes."""
    check(request.app.state.token, request.headers.get("authorization"))
