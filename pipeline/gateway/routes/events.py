from __future__ import annotations

from typing import Any

from pipeline.errors import NotFound
from pipeline.gateway.answers import EventOut, error, errors
from pipeline.gateway.deps import Control, management

router = management("/v1/events", "events")


@router.get("/{ident}", summary="An event, from its source's topic, with its invocations",
            response_model=EventOut,
            responses={404: error("No invocation of an event by that id."), **errors(422, 503)})
async def get_event(ident: str, control: Control) -> dict[str, Any]:
    """The event is read at the position its invocations carry; an event that made no
    invocation is unknown here (404)."""
    rows = control.results.rows_for_event(ident)
    if not rows:
        raise NotFound(f"no invocation of event {ident!r}")
    return {"event": await control.results.event(rows),
            "invocations": [r.to_dict() for r in rows]}
