"""OpenWhisk actions: faasflow functions. A code action (``python:3``, ``nodejs:*``) is a
warm code function (no image build); a ``blackbox`` action is a function of a local image,
run cold by faasflow's contract (the input on stdin, the result on stdout). Invoking runs the
function with its default parameters merged into the payload, in the gateway (blocking) or
through the workers (``invoke_async``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from pipeline.errors import Conflict, InvalidRequest
from pipeline.gateway.compat.openwhisk import records
from pipeline.gateway.compat.openwhisk.common import (
    Body,
    EntityName,
    KeyValue,
    Limit,
    Overwrite,
    Skip,
    new_router,
    window,
)
from pipeline.gateway.compat.openwhisk.edge import documented
from pipeline.gateway.compat.openwhisk.records import NAMESPACE, Action
from pipeline.gateway.deps import Control
from pipeline.records import dumps, strict_loads
from pipeline.specs import FunctionSpec, Mode, RetryPolicy

router = new_router("openwhisk actions")

OUTCOME = {"anyOf": [{"type": "object"}, {"type": "array"}]}
ACTIVATION_ID = {"type": "object", "required": ["activationId"],
                 "properties": {"activationId": {"type": "string"}}}
KIND_PATTERN = r"^(blackbox|python:3(\.\d+)?|nodejs:(default|\d+))$"


class Exec(Body):
    kind: str = Field(pattern=KIND_PATTERN, description="python:3, nodejs:default, "
                      "nodejs:<version> or blackbox")
    code: str | None = Field(default=None, description="the source, for a code kind")
    image: str | None = Field(default=None, description="a local image, for blackbox")
    main: str | None = Field(default=None, pattern=r"^[A-Za-z_$][A-Za-z0-9_$]{0,99}$")
    binary: bool = False


class Limits(Body):
    timeout: int | None = Field(default=None, ge=100, description="milliseconds")
    memory: int | None = Field(default=None, ge=6, le=65536, description="megabytes")


class ActionPut(Body):
    exec: Exec | None = None
    parameters: list[KeyValue] = Field(default_factory=list, max_length=1000)
    annotations: list[KeyValue] = Field(default_factory=list, max_length=1000)
    limits: Limits | None = None


def draft(name: str, put: ActionPut, old: FunctionSpec | None) -> FunctionSpec:
    """The function an action's PUT makes: what the body gives, the rest from the action it
    replaces (an update may give only parameters), else OpenWhisk's defaults."""
    before = Action.of(old) if old else None
    if put.exec is not None:
        kind = put.exec.kind
        runtime = records.runtime_of(kind)
        if put.exec.binary:
            raise InvalidRequest("binary (zip) actions are not supported: send the source")
        if runtime is not None and not put.exec.code:
            raise InvalidRequest(f"exec.code is required for kind {kind}")
        if runtime is None and not put.exec.image:
            raise InvalidRequest("exec.image is required for kind blackbox")
        code, image, main = put.exec.code, put.exec.image or "", put.exec.main or "main"
    elif old is not None and before is not None:
        kind, runtime, main = before.kind, old.runtime, before.main
        code = records.source_of(old.runtime, old.code) if old.runtime and old.code else None
        image = "" if code else old.image
    else:
        raise InvalidRequest("exec undefined: give exec.kind and exec.code or exec.image")
    limits = put.limits or Limits()
    timeout_ms = limits.timeout or (before.timeout_ms if before else records.DEFAULT_TIMEOUT_MS)
    memory = limits.memory or (before.memory_mb if before else records.DEFAULT_MEMORY_MB)
    parameters = records.mapping_of(p.model_dump() for p in put.parameters)
    annotations = records.mapping_of(a.model_dump() for a in put.annotations)
    if before is not None:  # an update keeps what it does not give, as OpenWhisk's
        parameters = parameters if "parameters" in put.model_fields_set else before.parameters
        annotations = (annotations if "annotations" in put.model_fields_set
                       else before.annotations)
    version = records.next_version(before.version) if before else records.VERSION
    entry = main
    if runtime is not None:
        code, entry = records.with_parameters(runtime, code or "", main, parameters)
    return FunctionSpec(
        name=name, image=image if runtime is None else "", image_digest="",
        mode=Mode.COLD if runtime is None else Mode.WARM, timeout_s=timeout_ms / 1000,
        memory_mb=memory, runtime=runtime, code=code if runtime else None, main=entry,
        retry=RetryPolicy(max_attempts=1),  # OpenWhisk runs an activation once
        annotations=records.notes(kind, version, parameters, annotations, main))


@router.put("/actions/{name}", summary="Create or update an action",
            responses=documented(409, 413))
async def put_action(name: EntityName, put: ActionPut, control: Control,
                     overwrite: Overwrite = False) -> dict[str, Any]:
    old = control.registry.functions.get(name)
    if old is not None and not overwrite:
        raise Conflict("resource already exists")
    spec = await control.put_function(draft(name, put, old))
    return records.action_document(spec, NAMESPACE, with_code=True)


@router.get("/actions", summary="List the actions")
async def list_actions(control: Control, limit: Limit = 30,
                       skip: Skip = 0) -> list[dict[str, Any]]:
    specs = sorted(control.registry.functions.values(), key=lambda s: s.name)
    return [records.action_document(s, NAMESPACE, with_code=False)
            for s in window(specs, limit, skip)]


@router.get("/actions/{name}", summary="An action", responses=documented(404))
async def get_action(name: EntityName, control: Control,
                     code: Annotated[bool, Query(description="with its code")] = True,
                     ) -> dict[str, Any]:
    spec = await control.found(control.registry.function, name)
    return records.action_document(spec, NAMESPACE, with_code=code)


@router.delete("/actions/{name}", summary="Delete an action", responses=documented(404))
async def delete_action(name: EntityName, control: Control) -> dict[str, Any]:
    spec = await control.found(control.registry.function, name)
    await control.delete_function(name)
    return records.action_document(spec, NAMESPACE, with_code=False)


def payload_of(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        payload = strict_loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("The request content was malformed: not JSON") from None
    if not isinstance(payload, dict):
        raise InvalidRequest("The request content was malformed: the payload must be an "
                             "object")
    return payload


@router.post(
    "/actions/{name}", summary="Invoke an action",
    responses={200: {"description": "blocking: its activation (or, with result, its result)",
                     "content": {"application/json": {"schema": OUTCOME}}},
               202: {"description": "not blocking: `{\"activationId\"}`",
                     "content": {"application/json": {"schema": ACTIVATION_ID}}},
               502: {"description": "blocking: the action failed (its activation, or with "
                                    "result its error)",
                     "content": {"application/json": {"schema": OUTCOME}}},
               500: {"description": "blocking: faasflow failed to run it (its activation, or "
                                    "with result its error)",
                     "content": {"application/json": {"schema": OUTCOME}}},
               **documented(404, 413)},
    openapi_extra={"requestBody": {"content": {"application/json": {
        "schema": {"type": "object"}}}}},
)
async def invoke_action(
    name: EntityName, request: Request, control: Control,
    blocking: Annotated[bool, Query(description="wait for the activation")] = False,
    result: Annotated[bool, Query(description="blocking: answer only its result")] = False,
) -> JSONResponse:
    spec = await control.found(control.registry.function, name)
    action = Action.of(spec)
    payload = payload_of(await request.body())
    # a code action merges its parameters itself (records.with_parameters); an image's
    # action gets them merged here, on this API's invocations
    data = dumps(payload if spec.code else records.merged(action.parameters, payload))
    if not blocking:
        invocation = await control.invoke_async(name, data, "application/json")
        return JSONResponse({"activationId": records.activation_id(invocation.id)}, 202)
    done = await control.invoke(name, data, "application/json")
    record = records.activation(done, action, NAMESPACE)
    status = 200 if record["response"]["success"] else (
        500 if record["statusCode"] == records.WHISK_ERROR else 502)
    headers = {"x-openwhisk-activation-id": record["activationId"]}
    return JSONResponse(record["response"]["result"] if result else record, status,
                        headers=headers)

