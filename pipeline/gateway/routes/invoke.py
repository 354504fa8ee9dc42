from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from pipeline.gateway.auth import check
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


@router.post("/function/{name}", summary="Invoke a function and wait for its output")
async def invoke(name: str, request: Request, control: Control) -> Response:
    function = control.registry.function(name)
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
