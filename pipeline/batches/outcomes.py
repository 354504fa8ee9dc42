"""Each event's outcome in its batch's Result, and one event's view of that Result.

A batch's Result is one record (one write per state, not one per event); its ``items``
hold each event's own outcome once the batch is final. The index makes a row of every
item, under the id the event would have had unbatched, so an event's outcome is found by
its id as an unbatched one's is.
"""

from __future__ import annotations

from dataclasses import replace

from pipeline.batches import partial
from pipeline.records import Failure, Item, Result, Status

REPORTED = f"the function reported it failed ({partial.KEY})"


def settle(result: Result) -> Result:
    """A batch's final Result with each event's outcome: the batch's own, unless the
    function succeeded and reported some events failed (``partial``): then those failed,
    and the batch failed (``error``: how many). A malformed report fails the batch."""
    if not result.items or not result.status.final:
        return result
    if result.status is Status.SUCCEEDED:
        failed = partial.reported(result.output, (i.event_id for i in result.items))
        if isinstance(failed, partial.Malformed):
            result = replace(result, status=Status.FAILED, failure=Failure.ERROR,
                             error=failed.error)
        elif failed:
            return replace(
                result, status=Status.FAILED, failure=Failure.ERROR,
                error=f"{len(failed)} of {len(result.items)} events failed ({partial.KEY})",
                items=tuple(replace(i, status=Status.FAILED, error=REPORTED)
                            if i.event_id in failed else replace(i, status=Status.SUCCEEDED)
                            for i in result.items))
    return replace(result, items=tuple(replace(i, status=result.status, error=None)
                                       for i in result.items))


def of_item(result: Result, item: Item) -> Result:
    """What the batch's Result says of one of its events: its own outcome once it has one
    (the batch is final, or the event succeeded in an earlier attempt), else the batch's
    state. A failed event without an error of its own failed with the batch: the batch's
    error."""
    status, error = verdict(result, item)
    return replace(result, invocation_id=item.invocation_id, event_id=item.event_id,
                   status=status, error=error, event_position=item.event_position,
                   items=(item,), batch_id=result.invocation_id)


def verdict(result: Result, item: Item) -> tuple[Status, str | None]:
    """The status and error of ``item`` in its batch's ``result`` (see ``of_item``)."""
    status = item.status if item.status.final else result.status
    if item.error is None and status is not Status.SUCCEEDED:
        return status, result.error
    return status, item.error


def each(result: Result) -> list[Result]:
    """Every event's view of a batch's Result (none for an unbatched one)."""
    return [of_item(result, item) for item in result.items]


def seen_as(result: Result, invocation_id: str) -> Result:
    """``result`` as invocation ``invocation_id`` sees it: itself, or, for one of a batch's
    events, that event's view."""
    if result.invocation_id == invocation_id:
        return result
    for item in result.items:
        if item.invocation_id == invocation_id:
            return of_item(result, item)
    return result
