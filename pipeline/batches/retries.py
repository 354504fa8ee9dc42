"""Retrying a batch: only its failed events run again, and each event that fails on the
last attempt is dead-lettered alone.

    attempt n ─► Result: some events succeeded, some failed (or all, with the batch)
              └► attempt n+1 runs a batch of the failed ones only (same invocation id)
    the final Result holds every event: those that succeeded in an earlier attempt, and
    the last attempt's outcome for the rest
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from pipeline.deadletters import DeadLetter
from pipeline.ids import batch_invocation_id
from pipeline.records import Event, Invocation, Item, Result, Status, dumps, strict_loads


class BatchTries:
    """The events of one invocation still to run (``current``); for an unbatched one, it
    stays the invocation itself."""

    def __init__(self, invocation: Invocation) -> None:
        self.first = invocation
        self.current = invocation
        self._done: dict[str, Item] = {}  # events that succeeded, by their invocation id

    def after(self, result: Result) -> Result:
        """An attempt that is to be retried: the next runs only its failed events. Returns
        its Result as the retry note shows it: the events to retry pending again."""
        if not self.first.items:
            return result
        self._done.update((i.invocation_id, i) for i in result.items
                          if i.status is Status.SUCCEEDED)
        again = [replace(i, status=Status.PENDING, error=None) for i in result.items
                 if i.status is not Status.SUCCEEDED]
        self.current = only(self.current, {i.event_id for i in again})
        return self.final(replace(result, items=tuple(again)))

    def final(self, result: Result) -> Result:
        """The last attempt's Result, with the events that succeeded before it, in the
        batch's order."""
        if not self._done:
            return result
        latest = {i.invocation_id: i for i in result.items}
        return replace(result, items=tuple(self._done.get(i.invocation_id)
                                           or latest[i.invocation_id]
                                           for i in self.first.items))


def only(invocation: Invocation, event_ids: Collection[str]) -> Invocation:
    """The batch ``invocation`` narrowed to the events ``event_ids`` (its function input
    and its items), under the same id."""
    events = [e for e in strict_loads(invocation.event.data) if e["id"] in event_ids]
    return replace(invocation, event=replace(invocation.event, data=dumps(events)),
                   items=tuple(i for i in invocation.items if i.event_id in event_ids))


def per_event(letter: DeadLetter, result: Result) -> list[DeadLetter]:
    """A batch's dead letter as one per event that failed: each holds a batch of that
    event alone, under an id of its own (so that its redrive writes a Result of its own,
    not over the batch's)."""
    assert letter.invocation is not None
    letters = []
    for item in result.items:
        if item.status is Status.SUCCEEDED:
            continue
        alone = only(letter.invocation, {item.event_id})
        (event,) = strict_loads(alone.event.data)
        ident = batch_invocation_id(alone.source, [Event.from_dict(event)], alone.function,
                                    alone.replay_id)
        letters.append(replace(letter, key=item.invocation_id, error=item.error or letter.error,
                               invocation=replace(alone, id=ident,
                                                  event=replace(alone.event, id=ident))))
    return letters
