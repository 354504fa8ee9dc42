from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from pipeline.gateway.deps import Authenticated, Control
from pipeline.gateway.schemas import DeadLetterListing, RedriveIn

router = APIRouter(prefix="/v1/deadletters", tags=["dead letters"], dependencies=Authenticated)


@router.get("", summary="Dead letters, newest first")
async def list_dead_letters(
    control: Control, query: Annotated[DeadLetterListing, Query()]
) -> list[dict[str, Any]]:
    """Each with its reason, error, function and image digest, the last lines of its logs
    and every attempt; event data is left out (``GET /v1/deadletters/{key}`` has it)."""
    letters = await control.dead_letters.list(query.where(query.redrivable), query.limit)
    return [letter.to_dict() for letter in letters]


@router.post("/redrive", summary="Run dead-lettered invocations again")
async def redrive(body: RedriveIn, control: Control) -> dict[str, Any]:
    """Puts the matching dead-lettered invocations back on the invocations topic, oldest
    first: each runs again from its first attempt and its Result is replaced."""
    done = await control.dead_letters.redrive(body.where(), body.limit)
    return {"redriven": done.redriven, "remaining": done.remaining, "skipped": done.skipped}


@router.get("/{key:path}", summary="One dead letter, whole")
async def get_dead_letter(key: str, control: Control) -> dict[str, Any]:
    return (await control.dead_letters.get(key)).to_dict()
