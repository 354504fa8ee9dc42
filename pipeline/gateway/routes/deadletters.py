from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from pipeline.gateway.answers import DeadLetterOut, Redriven, error, errors
from pipeline.gateway.deps import Control, management
from pipeline.gateway.schemas import DeadLetterListing, RedriveIn

router = management("/v1/deadletters", "dead letters")


@router.get("", summary="Dead letters, newest first", response_model=list[DeadLetterOut],
            responses=errors(422, 503))
async def list_dead_letters(
    control: Control, query: Annotated[DeadLetterListing, Query()]
) -> list[dict[str, Any]]:
    """Each with its reason, error, function and image digest, the last lines of its logs
    and every attempt; event data is left out (``GET /v1/deadletters/{key}`` has it)."""
    letters = await control.dead_letters.list(query.where(query.redrivable), query.limit)
    return [letter.to_dict() for letter in letters]


@router.post("/redrive", summary="Run dead-lettered invocations again", response_model=Redriven,
             responses=errors(413, 422, 503))
async def redrive(body: RedriveIn, control: Control) -> dict[str, Any]:
    """Puts the matching dead-lettered invocations back on the invocations topic, oldest
    first: each runs again from its first attempt and its Result is replaced."""
    done = await control.dead_letters.redrive(body.where(), body.limit)
    return {"redriven": done.redriven, "remaining": done.remaining, "skipped": done.skipped}


@router.get("/{key:path}", summary="One dead letter, whole", response_model=DeadLetterOut,
            responses={404: error("No dead letter by that key."), **errors(422, 503)})
async def get_dead_letter(key: str, control: Control) -> dict[str, Any]:
    return (await control.dead_letters.get(key)).to_dict()
