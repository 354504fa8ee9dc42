"""Calling Fn's fns as Fn's clients do: ``POST /invoke/{fn_id}`` (v2), an HTTP trigger at
``/t/{app}/{source}`` and a v1 route at ``/r/{app}/{route}`` (any method). The request's
method, path, query and headers reach the FDK (an event extension, ``pipeline.calls``); the
answer is the function's output, or Fn's ``{"message"}`` with 502 (it failed), 504 (it timed
out) or 503 (faasflow could not run it). No credentials, as Fn's, unless the function is
private (``public: false`` through ``/v1/functions``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from pipeline.calls import HttpCall
from pipeline.control import ControlPlane
from pipeline.errors import NotFound
from pipeline.gateway.auth import BASIC, BEARER, check
from pipeline.gateway.compat.fn import records
from pipeline.gateway.compat.fn.edge import (
    FN_ERRORS,
    FnErrors,
    app_by_name,
    fn_answer,
    fn_by_id,
    fn_error,
    triggers_of,
)
from pipeline.gateway.deps import Control
from pipeline.gateway.routes.invoke import media_type
from pipeline.records import Failure, Status
from pipeline.specs import FunctionSpec

router = APIRouter(tags=["fn"], route_class=FnErrors, responses=FN_ERRORS)

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
WITH_BODY = {"POST", "PUT", "PATCH"}
OUTPUT = {"application/json": {"schema": {}},
          "text/plain": {"schema": {"type": "string"}},
          "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "The function's output (the content type is a guess: JSON, text or "
                         "bytes)", "content": OUTPUT,
          "headers": {"Fn-Call-Id": {"schema": {"type": "string"}, "required": True,
                                     "description": "GET /v1/invocations/{id}"}}},
    502: fn_answer("The function failed (or did not start): the message says how."),
    503: fn_answer("Kafka or the Docker Engine is unavailable."),
    504: fn_answer("The function ran past its timeout."),
}
BODY = {"requestBody": {"content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    "application/json": {"schema": {}}}}}
# no credentials, as Fn's; a private function's (``public: false``) take the management token
SECURITY: dict[str, Any] = {"security": [{}, {BEARER.scheme_name: []}, {BASIC.scheme_name: []}]}


async def answer(request: Request, control: ControlPlane, spec: FunctionSpec,
                 path: str) -> Response:
    if not spec.public:
        check(request.app.state.token, request.headers.get("authorization"))
    call = HttpCall(method=request.method, path=path, query=request.url.query,
                    headers=dict(request.headers))
    result = await control.invoke(spec.name, await request.body(),
                                  request.headers.get("content-type"), call)
    request.app.state.metrics.invocations.labels(spec.name, result.status.value).inc()
    headers = {"Fn-Call-Id": result.invocation_id}
    if result.status is Status.SUCCEEDED:
        return Response(result.output, 200, headers=headers, media_type=media_type(result.output))
    if result.status is Status.TIMEOUT:
        failed = fn_error(504, "Timed out")
    elif result.failure is Failure.UNAVAILABLE:
        failed = fn_error(503, result.error or "Service unavailable")
    else:
        failed = fn_error(502, result.error or "function failed")
    failed.headers.update(headers)
    return failed


@router.post("/invoke/{fn_id}", summary="Invoke an Fn fn by its id", responses=ANSWERS,
             openapi_extra={**SECURITY, **BODY})
async def fn_invoke(fn_id: str, request: Request, control: Control) -> Response:
    return await answer(request, control, await fn_by_id(control, fn_id), "/")


async def trigger(app: str, source: str, request: Request, control: Control) -> Response:
    found = await app_by_name(control, app)
    path = "/" + source.strip("/")
    for candidate in triggers_of(control.registry, app_id=found.doc["id"]):
        if candidate.doc.get("source") == path:
            return await answer(request, control,
                                await fn_by_id(control, candidate.doc["fn_id"]), path)
    raise NotFound("Trigger not found")


async def route(app: str, path: str, request: Request, control: Control) -> Response:
    await app_by_name(control, app)
    wanted = "/" + path.strip("/")
    for spec in list(control.registry.functions.values()):
        if (records.is_fn(spec) and spec.annotations.get(records.APP_NAME) == app
                and spec.annotations.get(records.ROUTE) == wanted):
            return await answer(request, control, spec, wanted)
    raise NotFound("Route not found")


for method in METHODS:
    extra = {**SECURITY, **(BODY if method in WITH_BODY else {})}
    router.add_api_route("/t/{app}/{source:path}", trigger, methods=[method],
                         name=f"fn_trigger_{method.lower()}", responses=ANSWERS,
                         summary="Call an Fn HTTP trigger", openapi_extra=extra)
    router.add_api_route("/r/{app}/{path:path}", route, methods=[method],
                         name=f"fn_route_{method.lower()}", responses=ANSWERS,
                         summary="Call an Fn v1 route", openapi_extra=extra)
