"""Synchronous invocation, OpenFaaS's contract: any method on ``/function/{name}`` and
``/function/{name}/{path}``; the method, the path after the name, the query and the
headers reach the function (the classic watchdog's ``Http_*`` variables, ``pipeline.calls``);
failures are plain text with their status."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response

from pipeline.calls import HttpCall
from pipeline.gateway.answers import errors, links
from pipeline.gateway.auth import BASIC, BEARER, check
from pipeline.gateway.deps import Control
from pipeline.gateway.errors import (
    OTHER_CLIENT_ERRORS,
    PlainErrors,
    plain_answer,
    plain_error,
)
from pipeline.records import Status, strict_loads

router = APIRouter(tags=["invoke"], route_class=PlainErrors)

FAILED_STATUS = {Status.FAILED: 500, Status.TIMEOUT: 504}
METHODS = ("POST", "GET", "PUT", "PATCH", "DELETE")
WITH_BODY = {"POST", "PUT", "PATCH"}


def media_type(output: bytes) -> str:
    """A guess for the ``Content-Type`` of a function's output. It is JSON only by the same
    strict rule as event data (``strict_loads``: nesting bounded, so a deep output cannot
    exhaust the stack, and no NaN); anything else is text or bytes, never an error."""
    try:
        strict_loads(output)
        return "application/json"
    except ValueError:
        pass
    try:
        output.decode()
        return "text/plain; charset=utf-8"
    except UnicodeDecodeError:
        return "application/octet-stream"


def http_call(request: Request, path: str = "") -> HttpCall:
    """The request as its function sees it: the path after the function's name."""
    return HttpCall(method=request.method, path=f"/{path}", query=request.url.query,
                    headers=dict(request.headers))


async def private_checked(request: Request, control: Control, name: str) -> None:
    """404 for an unknown function; for a private one, 401 without the credentials."""
    if not (await control.found(control.registry.function, name)).public:
        check(request.app.state.token, request.headers.get("authorization"))


OUTPUT = {"application/json": {"schema": {}},
          "text/plain": {"schema": {"type": "string"}},
          "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
CALL_HEADERS = {
    "X-Call-Id": {"schema": {"type": "string"}, "required": True,
                  "description": "the invocation's id: GET /v1/invocations/{id}"},
    "X-Start-Time": {"schema": {"type": "string"}, "required": True,
                     "description": "when the gateway took the call, in Unix nanoseconds"},
    "X-Duration-Seconds": {"schema": {"type": "string"}, "required": True,
                           "description": "how long the function ran"},
}
BODY = {"requestBody": {"content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    "application/json": {"schema": {}},
}}}
SECURITY: dict[str, Any] = {"security": [{}, {BEARER.scheme_name: []}, {BASIC.scheme_name: []}]}
ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "The function's output, as it wrote it (the content type is a "
                         "guess: JSON, text or bytes)",
          "content": OUTPUT, "headers": CALL_HEADERS,
          **links("ident", "$response.header.X-Call-Id", "get_invocation")},
    400: plain_answer("The request cannot be used."),
    401: plain_answer("The function is private: credentials are missing or wrong."),
    404: plain_answer("No function by that name."),
    500: {**plain_answer("The function failed: its error, then its logs."),
          "headers": CALL_HEADERS},
    503: plain_answer("Kafka or the Docker Engine is unavailable."),
    504: {**plain_answer("The function ran past its timeout."), "headers": CALL_HEADERS},
    **errors(413), **OTHER_CLIENT_ERRORS,
}


async def invoke(name: str, request: Request, control: Control) -> Response:
    return await call(name, "", request, control)


async def invoke_path(name: str, path: str, request: Request, control: Control) -> Response:
    return await call(name, path, request, control)


async def call(name: str, path: str, request: Request, control: Control) -> Response:
    started_ns = time.time_ns()
    await private_checked(request, control, name)
    result = await control.invoke(name, await request.body(),
                                  request.headers.get("content-type"), http_call(request, path))
    request.app.state.metrics.invocations.labels(name, result.status.value).inc()
    headers = {"X-Call-Id": result.invocation_id, "X-Start-Time": str(started_ns),
               "X-Duration-Seconds": f"{result.duration_s or 0.0:.6f}"}
    if result.status is Status.SUCCEEDED:
        return Response(result.output, 200, headers=headers, media_type=media_type(result.output))
    answer = plain_error(FAILED_STATUS.get(result.status, 500),
                         "\n".join(filter(None, [result.error or "function failed", result.logs])))
    answer.headers.update(headers)
    return answer


for method in METHODS:
    suffix = "" if method == "POST" else f"_{method.lower()}"  # POST's is the known one
    extra = {**SECURITY, **(BODY if method in WITH_BODY else {})}
    router.add_api_route("/function/{name}", invoke, methods=[method], name=f"invoke{suffix}",
                         summary="Invoke a function and wait for its output",
                         responses=ANSWERS, openapi_extra=extra)
    router.add_api_route("/function/{name}/{path:path}", invoke_path, methods=[method],
                         name=f"invoke_path{suffix}",
                         summary="Invoke a function with a path of its own, and wait",
                         description="The path after the name reaches the function as "
                                     "`Http_Path`, the query as `Http_Query`.",
                         responses=ANSWERS, openapi_extra=extra)
