"""Splitting a failed batch to isolate its bad events (``split_on_error``), as Lambda's
BisectBatchOnFunctionError does: a batch that fails whole (the function's error, a
timeout, a crash, a malformed answer) is halved and each half run the same way, until the
events that fail are alone; the others succeed in their halves. All within one attempt:
the retry policy then applies to the events that still failed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from pipeline.batches.retries import only
from pipeline.records import Invocation, Item, Result, Status

Run = Callable[[Invocation], Awaitable[Result]]


def failed_whole(result: Result) -> bool:
    """Every event failed with the batch (none was reported failed on its own)."""
    return result.status is not Status.SUCCEEDED and all(
        i.status is not Status.SUCCEEDED and i.error is None for i in result.items)


async def run(execute: Run, invocation: Invocation) -> Result:
    """``execute(invocation)``, split as above when the invocation asks for it; the first
    run's Result with each event's outcome from the run that decided it."""
    result = await execute(invocation)
    if not invocation.split_on_error or len(invocation.items) < 2 or not failed_whole(result):
        return result
    ids = [i.event_id for i in invocation.items]
    half = len(ids) // 2
    decided: dict[str, Item] = {}
    for part in (ids[:half], ids[half:]):
        ran = await run(execute, only(invocation, set(part)))
        decided.update((i.invocation_id, i if i.status is Status.SUCCEEDED or i.error
                        else replace(i, error=ran.error)) for i in ran.items)
    items = tuple(decided[i.invocation_id] for i in invocation.items)
    bad = sum(1 for i in items if i.status is not Status.SUCCEEDED)
    if not bad:
        return replace(result, status=Status.SUCCEEDED, failure=None, error=None, items=items)
    return replace(result, items=items,
                   error=f"{bad} of {len(items)} events failed (the batch was split to "
                         f"isolate them): {result.error}")
