from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from pipeline.gateway.answers import DeadLetterOut, Redriven, errors
from pipeline.gateway.deps import Control, management
from pipeline.gateway.schemas import DeadLetterListing, RedriveIn

router = management("/v1/deadletters", "dead letters")


@router.get("", summary="Dead letters, newest first", response_model=list[DeadLetterOut],
            responses=errors(422, 503))
async def list_dead_letters(
    control: Control, query: Annotated[DeadLetterListing, Query()]
) -> list[dict[str, Any]]:
    """Each with its reason, error, function and image digest, the last lines of its logs
    and every attempt; event data is left out, except with ``key``: that one letter whole
    (its invocation or raw record too)."""
    if query.key is not None:
        return [letter.to_dict() for letter in await control.dead_letters.whole(query.key)]
    letters = await control.dead_letters.find(query.where(query.redrivable), query.limit)
    return [letter.to_dict() for letter in letters]


@router.post("/redrive", summary="Run dead-lettered invocations again", response_model=Redriven,
             responses=errors(400, 413, 422, 503))
async def redrive(body: RedriveIn, control: Control) -> dict[str, Any]:
    """Puts the matching dead-lettered invocations back on the invocations topic, oldest
    first: each runs again from its first attempt and its Result is replaced."""
    done = await control.dead_letters.redrive(body.where(), body.limit)
    return {"redriven": done.redriven, "remaining": done.remaining, "skipped": done.skipped}
