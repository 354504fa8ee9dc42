"""Async invocation: queue a run, answer 202 once Kafka has it (OpenFaaS's
``/async-function/{name}``, and the same under the management API)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from pipeline.calls import HttpCall
from pipeline.errors import InvalidRequest
from pipeline.gateway.answers import Answer, error, errors, links
from pipeline.gateway.deps import Authenticated, Control
from pipeline.gateway.errors import OTHER_CLIENT_ERRORS, PlainErrors, plain_answer
from pipeline.gateway.routes.invoke import SECURITY, http_call, private_checked

router = APIRouter(tags=["invoke"])
openfaas = APIRouter(tags=["invoke"], route_class=PlainErrors)  # its errors in plain text

CALLBACK_URL = Header(
    alias="X-Callback-Url", max_length=2048,
    description="POST the final Result here, signed with the Standard Webhooks scheme (the "
                "secret is in `faasflow status`); retried with backoff")
BODY = {"requestBody": {"content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    "application/json": {"schema": {}},
}}}


class Queued(Answer):
    invocation_id: str = Field(description="also in the X-Call-Id header")
    status_url: str = Field(description="GET it for pending, running or the final Result")


QUEUED = {"model": Queued, "description": "Queued: Kafka acknowledged the invocation",
          "headers": {"X-Call-Id": {"schema": {"type": "string"}, "required": True,
                                    "description": "the invocation's id"}},
          **links("ident", "$response.header.X-Call-Id", "get_invocation")}
ANSWERS = {202: QUEUED, 404: error("No function by that name."),
           422: error("The callback URL is not allowed (scheme, or a private address)."),
           **errors(413, 503)}


async def _queue(name: str, request: Request, control: Control, callback_url: str | None,
                 call: HttpCall | None = None) -> JSONResponse:
    invocation = await control.invoke_async(name, await request.body(),
                                            request.headers.get("content-type"),
                                            callback_url or "", call)
    status_url = str(request.url_for("get_invocation", ident=invocation.id))
    return JSONResponse({"invocation_id": invocation.id, "status_url": status_url}, 202,
                        headers={"X-Call-Id": invocation.id, "Location": status_url})


PLAIN_ANSWERS: dict[int | str, dict[str, Any]] = {
    202: QUEUED, 400: plain_answer("The callback URL is not allowed (scheme, or a private "
                                   "address), or a header is invalid."),
    401: plain_answer("The function is private: credentials are missing or wrong."),
    404: plain_answer("No function by that name."), 503: plain_answer("Kafka is unavailable."),
    **errors(413), **OTHER_CLIENT_ERRORS}


@openfaas.post("/async-function/{name}", status_code=202, summary="Queue a function's run",
               response_model=Queued, responses=PLAIN_ANSWERS,
               openapi_extra={**SECURITY, **BODY})
async def invoke_async(name: str, request: Request, control: Control,
                       callback_url: Annotated[str | None, CALLBACK_URL] = None) -> JSONResponse:
    """202 once Kafka acknowledged the run; a broker that is down is 503, never a 202 that
    goes nowhere. Same credentials as ``POST /function/{name}``."""
    await private_checked(request, control, name)
    return await _queue(name, request, control, callback_url, http_call(request))


@openfaas.post("/async-function/{name}/{path:path}", status_code=202,
               summary="Queue a function's run with a path of its own", response_model=Queued,
               responses=PLAIN_ANSWERS, openapi_extra={**SECURITY, **BODY})
async def invoke_async_path(name: str, path: str, request: Request, control: Control,
                            callback_url: Annotated[str | None, CALLBACK_URL] = None,
                            ) -> JSONResponse:
    await private_checked(request, control, name)
    return await _queue(name, request, control, callback_url, http_call(request, path))


@router.post("/v1/functions/{name}/invocations", status_code=202,
             summary="Queue a function's run (async=true)", response_model=Queued,
             dependencies=Authenticated, responses={**ANSWERS, **errors(401)},
             openapi_extra=BODY)
async def queue_invocation(
    name: str, request: Request, control: Control,
    asynchronous: Annotated[bool, Query(alias="async", description="must be true: "
                                        "POST /function/{name} runs and waits")] = False,
    callback_url: Annotated[str | None, CALLBACK_URL] = None,
) -> JSONResponse:
    await control.found(control.registry.function, name)
    if not asynchronous:
        raise InvalidRequest("only async=true is served here; POST /function/{name} runs a "
                             "function and waits for its output")
    return await _queue(name, request, control, callback_url)


router.include_router(openfaas)
