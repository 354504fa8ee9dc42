"""The OpenWhisk API's edge: its credentials and its error answers.

Credentials: OpenWhisk's clients send their API key ``user:password`` as Basic auth. The
password must be faasflow's management token; the user part may be anything (an OpenWhisk
key's UUID, ``guest``, ``admin``): faasflow has one namespace and one key. A bearer token
works too. The check runs before the body is read or validated, so an anonymous caller gets
401 whatever it sends.

Errors: ``{"error": "<message>", "code": "<transaction id>"}`` with OpenWhisk's statuses,
for faasflow's own errors and for a request that fails validation (OpenWhisk's 400).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import secrets
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from pipeline import errors
from pipeline.gateway.errors import FOREIGN_STATUS, ForeignErrors, status_of

log = logging.getLogger(__name__)


MESSAGES = {
    400: "The request content was malformed",
    401: "The supplied authentication is invalid.",
    404: "The requested resource does not exist.",
    409: "resource already exists",
    413: "The request content was too large.",
    503: "The service is temporarily unavailable; try again later.",
}


class OpenWhiskError(BaseModel):
    error: str
    code: str


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Error answers in OpenAPI ``responses``. A body over the size limit is refused before
    routing, by faasflow's own middleware, in faasflow's error form: 413 promises less."""
    return {status: {"model": OpenWhiskError, "description": MESSAGES.get(status, "An error.")}
            if status != 413 else {"description": MESSAGES[413], "content": {
                "application/json": {"schema": {"type": "object", "required": ["error"]}}}}
            for status in statuses}


def answer(status: int, message: str | None = None) -> JSONResponse:
    """OpenWhisk's error body; ``code`` is a transaction id, as OpenWhisk's."""
    headers = {"WWW-Authenticate": 'Basic realm="faasflow"'} if status == 401 else None
    return JSONResponse({"error": message or MESSAGES.get(status, "error"),
                         "code": secrets.token_hex(16)}, status, headers=headers)


def presented_token(authorization: str | None) -> str | None:
    """The token in ``Bearer <token>`` or in Basic ``<any user>:<token>``."""
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() != "basic":
        return None
    try:
        _, colon, token = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return token if colon and token else None


def authenticated(expected: str | None, authorization: str | None) -> bool:
    token = presented_token(authorization)
    return bool(expected and token) and hmac.compare_digest(
        str(token).encode(), str(expected).encode())


class OpenWhiskRoute(ForeignErrors):
    """A route of the OpenWhisk API: credentials first, then the handler, its errors
    answered as OpenWhisk answers them (what failed inside faasflow is logged, not told)."""

    invalid = MESSAGES[400]

    def answer(self, status: int, message: str) -> Response:
        return answer(FOREIGN_STATUS.get(status, status), message)

    def admit(self, request: Request) -> Response | None:
        if authenticated(request.app.state.token, request.headers.get("authorization")):
            return None
        return answer(401)

    def failed(self, request: Request, exc: errors.FaasflowError) -> Response:
        status = status_of(exc)
        if status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, exc.message)
            return answer(status)
        return self.answer(status, exc.message)

    def unparsed(self, exc: HTTPException) -> Response:
        return answer(exc.status_code, f"{MESSAGES[400]}: {exc.detail}"
                      if exc.status_code == 400 else str(exc.detail))
