from __future__ import annotations

import contextlib
from typing import Any

from fastapi import Query, Response

from pipeline.errors import BrokerUnavailable
from pipeline.gateway.answers import FunctionOut, ResultOut, errors, links
from pipeline.gateway.deps import Control, Name, management
from pipeline.gateway.schemas import FunctionIn
from pipeline.index import Query as IndexQuery

router = management("/v1/functions", "functions")
NEXT = links("name", "$response.body#/name", "get_function", "function_invocations", "invoke",
             "delete_function")


@router.put("/{name}", summary="Deploy or update a function", response_model=FunctionOut,
            responses={200: NEXT, 201: {"model": FunctionOut, "description": "Deployed", **NEXT},
                       **errors(400, 413, 422, 503)})
async def put_function(name: Name, body: FunctionIn, control: Control,
                       response: Response) -> dict[str, Any]:
    """201 when new, 200 when it replaced the function of that name. 422 for an image that
    is not on this machine (faasflow never pulls) or a secret that does not exist."""
    existed = name in control.registry.functions
    spec = await control.put_function(body.draft(name, control.settings.runtime))
    response.status_code = 200 if existed else 201
    return spec.to_dict()


@router.get("", summary="List functions", response_model=list[FunctionOut])
async def list_functions(control: Control) -> list[dict[str, Any]]:
    return [f.to_dict() for f in sorted(control.registry.functions.values(), key=lambda f: f.name)]


@router.get("/{name}", summary="Get a function", response_model=FunctionOut,
            responses=errors(404, 422))
async def get_function(name: str, control: Control) -> dict[str, Any]:
    return (await control.found(control.registry.function, name)).to_dict()


@router.get("/{name}/invocations", summary="A function's most recent invocations",
            response_model=list[ResultOut], response_model_exclude_unset=True,
            responses=errors(404, 422))
async def function_invocations(
    name: str, control: Control, limit: int = Query(default=20, ge=1, le=1000)
) -> list[dict[str, Any]]:
    """Newest first, with their logs; a deleted function's history stays readable. What
    the results topic holds when asked is in the answer (a call just answered, say)."""
    with contextlib.suppress(BrokerUnavailable):  # then what the index holds
        await control.results.sync()
    rows = (await control.results.page(IndexQuery(function=name, limit=limit))).rows
    if not rows:
        await control.found(control.registry.function, name)  # 404 for a name that never ran
    return [r.to_dict() for r in await control.results.results(rows)]


@router.delete("/{name}", status_code=204, summary="Delete a function",
               responses=errors(404, 422, 503))
async def delete_function(name: str, control: Control) -> None:
    await control.delete_function(name)
