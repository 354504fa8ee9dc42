from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from pipeline.gateway.answers import error, errors, links
from pipeline.gateway.auth import BASIC, BEARER, check
from pipeline.gateway.deps import Control
from pipeline.gateway.errors import error_body
from pipeline.records import Status, strict_loads

router = APIRouter(tags=["invoke"])

FAILED_STATUS = {Status.FAILED: 500, Status.TIMEOUT: 504}


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


OUTPUT = {"application/json": {"schema": {}},
          "text/plain": {"schema": {"type": "string"}},
          "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
CALL_HEADERS = {
    "X-Call-Id": {"schema": {"type": "string"}, "required": True,
                  "description": "the invocation's id: GET /v1/invocations/{id}"},
    "X-Duration-Seconds": {"schema": {"type": "string"}, "required": True,
                           "description": "how long the function ran"},
}


@router.post(
    "/function/{name}", summary="Invoke a function and wait for its output",
    responses={
        200: {"description": "The function's output, as it wrote it (the content type is "
                             "a guess: JSON, text or bytes)",
              "content": OUTPUT, "headers": CALL_HEADERS,
              **links("ident", "$response.header.X-Call-Id", "get_invocation")},
        401: error("The function is private: credentials are missing or wrong."),
        404: error("No function by that name."),
        500: {**error("The function failed: `error.logs` holds its logs."),
              "headers": CALL_HEADERS},
        504: {**error("The function ran past its timeout."), "headers": CALL_HEADERS},
        **errors(413, 422, 503),
    },
    openapi_extra={
        "security": [{}, {BEARER.scheme_name: []}, {BASIC.scheme_name: []}],
        "requestBody": {"content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {}},
        }},
    },
)
async def invoke(name: str, request: Request, control: Control) -> Response:
    function = await control.found(control.registry.function, name)
    if not function.public:
        check(request.app.state.token, request.headers.get("authorization"))
    body = await request.body()
    result = await control.invoke(name, body, request.headers.get("content-type"))
    request.app.state.metrics.invocations.labels(name, result.status.value).inc()
    headers = {"X-Call-Id": result.invocation_id,
               "X-Duration-Seconds": f"{result.duration_s or 0.0:.6f}"}
    if result.status is Status.SUCCEEDED:
        return Response(result.output, 200, headers=headers, media_type=media_type(result.output))
    return JSONResponse(
        error_body(f"function_{result.status.value}", result.error or "function failed",
                   invocation_id=result.invocation_id, logs=result.logs),
        FAILED_STATUS.get(result.status, 500), headers=headers,
    )
