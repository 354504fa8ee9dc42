"""OpenWhisk activations: faasflow's finished invocations, read from the results index,
and the activations of fired triggers (``triggers.trigger_activation``). An invocation still
queued or running is not an activation yet (404, and left out of listings), as in OpenWhisk,
whose activation records are written when the run ends."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Path, Query

from pipeline.control import ControlPlane
from pipeline.errors import NotFound
from pipeline.gateway.compat.openwhisk import records
from pipeline.gateway.compat.openwhisk.common import Limit, Skip, new_router
from pipeline.gateway.compat.openwhisk.edge import documented
from pipeline.gateway.compat.openwhisk.records import NAMESPACE, Action
from pipeline.gateway.compat.openwhisk.triggers import trigger_activation
from pipeline.gateway.deps import Control
from pipeline.gateway.schemas import NAME
from pipeline.index.rows import MAX_LIMIT, timestamp
from pipeline.index.rows import Query as IndexQuery
from pipeline.records import Result, Status

router = new_router("openwhisk activations")

ActivationId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$",
                                   description="32 hexadecimal digits")]
EpochMs = Annotated[int | None, Query(ge=0, le=253_402_300_799_999,
                                      description="epoch milliseconds")]


def _action(control: ControlPlane, function: str) -> Action | None:
    spec = control.registry.functions.get(function)
    return Action.of(spec) if spec else None


def _at(epoch_ms: int | None) -> str | None:
    if epoch_ms is None:
        return None
    return timestamp(datetime.fromtimestamp(epoch_ms / 1000, UTC))


@router.get("/activations", summary="List the activations, newest first")
async def list_activations(
    control: Control,
    name: Annotated[str | None, Query(pattern=NAME, description="of this action")] = None,
    limit: Limit = 30, skip: Skip = 0, since: EpochMs = None, upto: EpochMs = None,
    docs: Annotated[bool, Query(description="whole records (logs, response)")] = False,
) -> list[dict[str, Any]]:
    wanted = (limit or 30) + skip
    query = IndexQuery(function=name, since=_at(since), until=_at(upto),
                       limit=min(MAX_LIMIT, wanted))
    rows = [r for r in (await control.results.page(query)).rows if Status(r.status).final]
    found = await control.results.results(rows[skip:wanted])
    return [records.activation(r, _action(control, r.function), NAMESPACE, docs=docs)
            for r in found]


async def _activation(control: ControlPlane, ident: str) -> dict[str, Any]:
    invocation = records.invocation_id_of(ident)
    if invocation is None:
        raise NotFound("The requested resource does not exist.")
    try:
        result: Result = await control.result(invocation)
    except NotFound:
        return await trigger_activation(control, invocation)
    if not result.status.final:
        raise NotFound("The requested resource does not exist.")
    return records.activation(result, _action(control, result.function), NAMESPACE)


@router.get("/activations/{ident}", summary="An activation", responses=documented(404))
async def get_activation(ident: ActivationId, control: Control) -> dict[str, Any]:
    return await _activation(control, ident)


@router.get("/activations/{ident}/logs", summary="An activation's logs",
            responses=documented(404))
async def get_activation_logs(ident: ActivationId, control: Control) -> dict[str, Any]:
    return {"logs": (await _activation(control, ident))["logs"]}


@router.get("/activations/{ident}/result", summary="An activation's response",
            responses=documented(404))
async def get_activation_result(ident: ActivationId, control: Control) -> dict[str, Any]:
    response: dict[str, Any] = (await _activation(control, ident))["response"]
    return response
