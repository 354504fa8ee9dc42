from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from pipeline.control import FunctionRequest
from pipeline.gateway.deps import Authenticated, Control
from pipeline.gateway.schemas import FunctionIn

router = APIRouter(prefix="/v1/functions", tags=["functions"], dependencies=Authenticated)


@router.put("/{name}", summary="Deploy or update a function")
async def put_function(name: str, body: FunctionIn, control: Control,
                       response: Response) -> dict[str, Any]:
    runtime = control.settings.runtime
    existed = name in control.registry.functions
    spec = await control.put_function(name, FunctionRequest(
        image=body.image, mode=body.mode, env=body.env, public=body.public,
        timeout_s=body.timeout_s or runtime.default_timeout_s,
        memory_mb=body.memory_mb or runtime.default_memory_mb,
    ))
    response.status_code = 200 if existed else 201
    return spec.to_dict()


@router.get("", summary="List functions")
async def list_functions(control: Control) -> list[dict[str, Any]]:
    return [f.to_dict() for f in sorted(control.registry.functions.values(), key=lambda f: f.name)]


@router.get("/{name}", summary="Get a function")
async def get_function(name: str, control: Control) -> dict[str, Any]:
    return control.registry.function(name).to_dict()


@router.delete("/{name}", status_code=204, summary="Delete a function")
async def delete_function(name: str, control: Control) -> None:
    await control.delete_function(name)
