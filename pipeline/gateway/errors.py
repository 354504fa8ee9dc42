"""One table from faasflow's errors to HTTP statuses, and JSON bodies for every failure.

Clients always get ``{"error": {"code", "message"}}`` and never a stack trace.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import compile_path

from pipeline import errors

log = logging.getLogger(__name__)

STATUS: dict[type[errors.FaasflowError], int] = {
    errors.NotFound: 404,
    errors.InvalidRequest: 422,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.BrokerUnavailable: 503,
    errors.RuntimeUnavailable: 503,
}


HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
              413: "payload_too_large"}
HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"}
CLIENT_CLOSED = 499  # nginx's status for a request its client abandoned; never sent


def status_of(exc: errors.FaasflowError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 503 if isinstance(exc, errors.RetryableError) else 400


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def error_response(exc: errors.FaasflowError) -> JSONResponse:
    status = status_of(exc)
    headers = {"WWW-Authenticate": 'Bearer, Basic realm="faasflow"'} if status == 401 else None
    extra = {}
    if isinstance(exc, errors.VerificationFailed):  # a signature, not a token, is missing
        headers, extra = None, {"check": exc.check}
    return JSONResponse(error_body(exc.code, exc.message, **extra), status, headers=headers)


def field_of(problem: Any) -> str:
    """Where a validation problem is, such as ``image`` or ``query.limit``."""
    return ".".join(str(p) for p in problem["loc"] if p != "body") or "body"


# OpenFaaS's paths: their errors are plain text, from the routes (``PlainErrors``) or not
PLAIN_PREFIXES = ("/function/", "/async-function/", "/system/")
FOREIGN_STATUS = {422: 400}  # OpenFaaS, Fn and OpenWhisk answer input they cannot use with 400


def plain_answer(description: str) -> dict[str, Any]:
    """An error answer of a ``PlainErrors`` route in OpenAPI ``responses``."""
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


# (documented, so that FastAPI does not document its 422, which these routes never give)
OTHER_CLIENT_ERRORS: dict[int | str, dict[str, Any]] = {
    "4XX": plain_answer("Another client error, as plain text.")}


def plain_error(status: int, message: str) -> PlainTextResponse:
    headers = {"WWW-Authenticate": 'Basic realm="faasflow"'} if status == 401 else None
    return PlainTextResponse(message + "\n", FOREIGN_STATUS.get(status, status), headers=headers)


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class ForeignErrors(APIRoute, ABC):
    """A route of another platform's API (OpenFaaS, Fn, OpenWhisk), its failures answered
    in that API's form: a subclass says how (``answer``, given faasflow's status), may
    refuse a request before its body is read (``admit``), and may word what faasflow
    says otherwise (``failed``, ``unparsed``)."""

    invalid = "invalid request"  # how a request that fails validation is described

    @abstractmethod
    def answer(self, status: int, message: str) -> Response:
        """The failure, with faasflow's ``status``, in the platform's own form."""

    def admit(self, request: Request) -> Response | None:
        return None

    def failed(self, request: Request, exc: errors.FaasflowError) -> Response:
        return self.answer(status_of(exc), exc.message)

    def unparsed(self, exc: StarletteHTTPException) -> Response:
        """FastAPI's own refusal: a body it cannot parse."""
        return self.answer(exc.status_code, str(exc.detail))

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            refused = self.admit(request)
            if refused is not None:
                return refused
            try:
                return await handler(request)
            except errors.FaasflowError as exc:
                return self.failed(request, exc)
            except RequestValidationError as exc:
                problems = "; ".join(f"{field_of(e)}: {e['msg']}" for e in exc.errors())
                return self.answer(400, f"{self.invalid}: {problems}")
            except StarletteHTTPException as exc:
                return self.unparsed(exc)

        return route


class PlainErrors(ForeignErrors):
    """A route that answers its failures as OpenFaaS's gateway does: the message as plain
    text with the status."""

    def answer(self, status: int, message: str) -> Response:
        return plain_error(status, message)


def documented_methods(app: FastAPI, path: str) -> set[str]:
    """The methods the OpenAPI document lists for ``path``: every route's, where Starlette's
    405 names only those of the first route whose path matched (``GET`` where ``PUT`` and
    ``DELETE`` work too)."""
    methods: set[str] = set()
    for template, item in app.openapi()["paths"].items():
        if compile_path(template)[0].match(path):
            methods |= {method.upper() for method in item} & HTTP_METHODS
    return methods


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.FaasflowError)
    async def faasflow_error(request: Request, exc: errors.FaasflowError) -> JSONResponse:
        response = error_response(exc)
        if response.status_code >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, exc.message)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [
            {"field": field_of(e), "message": e["msg"]}
            for e in exc.errors()
        ]
        names = ", ".join(f["field"] for f in fields)
        return JSONResponse(error_body("validation", f"invalid request: {names}", fields=fields),
                            422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:  # (a route the document leaves out keeps its own Allow)
            documented = documented_methods(request.app, request.scope["path"])
            headers["Allow"] = ", ".join(sorted(documented)) or headers.get("Allow", "")
        if request.scope["path"].startswith(PLAIN_PREFIXES):  # no route, or a body unread
            answer = plain_error(exc.status_code, str(exc.detail))
            answer.headers.update(headers)
            return answer
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=headers)

    @app.exception_handler(ClientDisconnect)
    async def gone(request: Request, exc: ClientDisconnect) -> Response:
        """The client left, or was cut off for sending too slowly, before its body was in:
        nobody reads this answer, and the metrics count it as 499, not as an error."""
        log.info("%s %s: client gone before its body was read", request.method,
                 request.url.path)
        return Response(status_code=CLIENT_CLOSED)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal", "internal error; see the gateway log"), 500)
