"""Invocations, found through the results index: listings come from the index alone;
a whole Result is read from the results topic (503 when Kafka does not answer)."""

from __future__ import annotations

from typing import Any

from fastapi import Query

from pipeline.gateway.answers import InvocationOut, InvocationPage, ResultOut, error, errors
from pipeline.gateway.deps import Control, management
from pipeline.gateway.schemas import Rfc3339
from pipeline.index import Cursor
from pipeline.index import Query as IndexQuery
from pipeline.index.rows import CURSOR_PATTERN, MAX_LIMIT, timestamp
from pipeline.records import Status

router = management("/v1/invocations", "invocations")


@router.get("", summary="Find invocations, or the results of the invocations an event caused",
            response_model=InvocationPage | list[ResultOut], response_model_exclude_unset=True,
            responses=errors(422, 503))
async def list_invocations(
    control: Control,
    event_id: str | None = Query(default=None, min_length=1, description=(
        "the event's invocations: their whole Results, a list (the other filters are "
        "ignored)")),
    wait: float = Query(default=0.0, ge=0, le=60, description=(
        "with event_id: wait up to this many seconds until every result is final")),
    function: str | None = Query(default=None, min_length=1),
    status: Status | None = None,
    source: str | None = Query(default=None, min_length=1,
                               description="the faasflow source its event came through"),
    since: Rfc3339 | None = Query(default=None, description="queued at or after (RFC 3339)"),
    until: Rfc3339 | None = Query(default=None, description="queued before (RFC 3339)"),
    limit: int = Query(default=50, ge=1, le=MAX_LIMIT),
    cursor: str | None = Query(default=None, min_length=1, pattern=CURSOR_PATTERN,
                               description="`next_cursor` of the page before"),
) -> Any:
    """Without event_id: a page of invocations, newest first (by queued time), as the index
    holds them (no outputs or logs), and the cursor of the next page."""
    if event_id is not None:
        return [r.to_dict() for r in await control.results_for_event(event_id, wait)]
    query = IndexQuery(
        function=function, status=status.value if status else None, source=source,
        since=timestamp(since) if since else None,
        until=timestamp(until) if until else None, limit=limit,
        after=Cursor.decode(cursor) if cursor is not None else None)
    return (await control.results.page(query)).to_dict()


@router.get("/{ident}", summary="One invocation: its whole Result and callback deliveries",
            response_model=InvocationOut, response_model_exclude_unset=True,
            responses={404: error("No invocation by that id."), **errors(422, 503)})
async def get_invocation(ident: str, control: Control) -> dict[str, Any]:
    result = await control.result(ident)
    return {**result.to_dict(), "callbacks": control.results.callbacks(ident)}
