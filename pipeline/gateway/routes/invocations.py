"""Invocations, found through the results index: listings come from the index alone;
a whole Result is read from the results topic (503 when Kafka does not answer)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from pipeline.gateway.answers import InvocationOut, InvocationPage, ResultOut, error, errors
from pipeline.gateway.deps import Control, management
from pipeline.gateway.schemas import InvocationListing

router = management("/v1/invocations", "invocations")


@router.get("", summary="Find invocations, or the results of the invocations an event caused",
            response_model=InvocationPage | list[ResultOut], response_model_exclude_unset=True,
            responses=errors(422, 503))
async def list_invocations(control: Control,
                           query: Annotated[InvocationListing, Query()]) -> Any:
    """Without event_id: a page of invocations, newest first (by queued time), as the index
    holds them (no outputs or logs), and the cursor of the next page."""
    if query.event_id is not None:
        return [r.to_dict() for r in await control.results_for_event(query.event_id,
                                                                       query.wait)]
    return (await control.results.page(query.query())).to_dict()


@router.get("/{ident}", summary="One invocation: its whole Result and callback deliveries",
            response_model=InvocationOut, response_model_exclude_unset=True,
            responses={404: error("No invocation by that id."), **errors(422, 503)})
async def get_invocation(ident: str, control: Control) -> dict[str, Any]:
    result = await control.result(ident)
    return {**result.to_dict(), "callbacks": control.results.callbacks(ident)}
