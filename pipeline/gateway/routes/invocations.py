from __future__ import annotations

from typing import Any

from fastapi import Query

from pipeline.gateway.answers import ResultOut, error, errors
from pipeline.gateway.deps import Control, management

router = management("/v1/invocations", "invocations")


@router.get("", summary="Results of the invocations an event caused",
            response_model=list[ResultOut], response_model_exclude_unset=True,
            responses=errors(422))
async def list_invocations(
    control: Control,
    event_id: str = Query(min_length=1),
    wait: float = Query(default=0.0, ge=0, le=60,
                        description="wait up to this many seconds until every result is final"),
) -> list[dict[str, Any]]:
    return [r.to_dict() for r in await control.results_for_event(event_id, wait)]


@router.get("/{ident}", summary="One invocation's result", response_model=ResultOut,
            response_model_exclude_unset=True,
            responses={404: error("No invocation by that id."), **errors(422)})
async def get_invocation(ident: str, control: Control) -> dict[str, Any]:
    return control.result(ident).to_dict()
