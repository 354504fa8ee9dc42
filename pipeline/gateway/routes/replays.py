"""``/v1/replays``: replay a range of a source's events into its functions, or into one
function, and compare a shadow run with the original's outputs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from pipeline.gateway.answers import Answer, error, errors, links
from pipeline.gateway.deps import management
from pipeline.gateway.schemas import NAME
from pipeline.replays.service import Ask, ReplayService

router = management("/v1/replays", "replays")
NEXT = links("replay_id", "$response.body#/id", "get_replay", "cancel_replay")
BOUND = ("'earliest', 'latest', an RFC 3339 time (resolved per partition to the first "
         'offset written then or later), or {"<partition>": offset, …}')


async def _replays(request: Request) -> ReplayService:
    replays: ReplayService = request.app.state.replays
    return replays


Replays = Annotated[ReplayService, Depends(_replays)]


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    source: str = Field(pattern=NAME, description="the source whose events are replayed")
    start: JsonValue = Field(alias="from", description=f"the first event: {BOUND}")
    end: JsonValue = Field(alias="to", description=f"where to stop (not replayed): {BOUND}")
    function: str | None = Field(
        default=None, pattern=NAME,
        description="replay into this function only (subscribed or not); without it, into "
        "every function subscribed to the source now")
    filter: JsonValue = Field(default=None, description="only the events this filter matches")
    compare_with: str | None = Field(
        default=None, pattern=NAME,
        description="a shadow replay: compare each output with the one this function gave "
        "for the same event (needs function)")

    def ask(self) -> Ask:
        return Ask(self.source, self.start, self.end, self.function, self.filter,
                   self.compare_with)


class Example(Answer):
    event_id: str
    output: JsonValue = Field(description="the replayed run's output")
    original_output: JsonValue = Field(description="compare_with's output for the event")


class Comparison(Answer):
    same: int
    different: int
    failed: int = Field(description="the replayed or the original run did not succeed")
    missing: int = Field(description="compare_with has no Result for the event")
    examples: list[Example] = Field(description="the first differences")


class ProgressOut(Answer):
    events_total: int = Field(description="records in the resolved ranges")
    events_read: int
    events_matched: int = Field(description="events the filters let through")
    invocations: int = Field(description="invocations made")
    results_final: int | None = Field(default=None, description="of those, final")


class ReplayOut(Answer):
    id: str
    source: str
    function: str | None
    filter: JsonValue
    compare_with: str | None
    status: str = Field(description="running, done, failed or cancelled")
    ranges: dict[str, dict[str, int]] = Field(
        description="per partition, the offsets replayed: [from, to)")
    progress: ProgressOut
    comparison: Comparison | None = None
    created_at: str
    cancelled_at: str | None
    error: str | None


@router.post("", status_code=201, summary="Replay a range of a source's events",
             response_model=ReplayOut,
             responses={201: NEXT,
                        404: error("No such source, function or compare_with function."),
                        **errors(400, 413, 422, 503)})
async def create_replay(body: ReplayIn, replays: Replays) -> dict[str, Any]:
    """``from`` and ``to`` are resolved to offsets now (``latest`` is the end at this
    moment); a worker then feeds the events to the functions, with the replay's id on
    every invocation. 422 when ``from`` lies after ``to``, the filter is invalid (the
    message points at the bad part), or ``compare_with`` comes without ``function``."""
    return await replays.create(body.ask())


@router.get("", summary="List replays, newest first", response_model=list[ReplayOut])
async def list_replays(replays: Replays) -> list[dict[str, Any]]:
    return replays.list()


@router.get("/{replay_id}", summary="A replay's status, progress and comparison",
            response_model=ReplayOut, responses=errors(404, 422, 503))
async def get_replay(replay_id: str, replays: Replays) -> dict[str, Any]:
    """With ``compare_with``: how many outputs were the same, different, failed or had no
    original, and the first differences with both outputs."""
    return await replays.describe(replay_id)


@router.delete("/{replay_id}", summary="Cancel a replay", response_model=ReplayOut,
               responses=errors(404, 422, 503))
async def cancel_replay(replay_id: str, replays: Replays) -> dict[str, Any]:
    """Stops feeding events; invocations already queued still run."""
    return await replays.cancel(replay_id)
