from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from pipeline.gateway.deps import Authenticated, Control

router = APIRouter(prefix="/v1/invocations", tags=["invocations"], dependencies=Authenticated)


@router.get("", summary="Results of the invocations an event caused")
async def list_invocations(
    control: Control,
    event_id: str = Query(min_length=1),
    wait: float = Query(default=0.0, ge=0, le=60,
                        description="wait up to this many seconds until every result is final"),
) -> list[dict[str, Any]]:
    return [r.to_dict() for r in await control.results_for_event(event_id, wait)]


@router.get("/{ident}", summary="One invocation's result")
async def get_invocation(ident: str, control: Control) -> dict[str, Any]:
    return control.result(ident).to_dict()
