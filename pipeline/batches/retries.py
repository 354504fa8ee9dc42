"""Retrying a batch: only its failed events run again, and each event that fails on the
last attempt is dead-lettered alone.

    attempt n ─► Result: some events succeeded, some failed (or all, with the batch)
              └► attempt n+1 runs a batch of the failed ones only (same invocation id)
    the final Result holds every event: those that succeeded in an earlier attempt, and
    the last attempt's outcome for the rest
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace

from pipeline.deadletters import DeadLetter, Reason
from pipeline.ids import batch_invocation_id
from pipeline.records import (
    Event,
    Failure,
    Invocation,
    Item,
    Result,
    Status,
    dumps,
    strict_loads,
    utc_now,
)

EXPIRED = "expired: older than its subscription's max_record_age_s when its batch was to run"


class BatchTries:
    """The events of one invocation still to run (``current``); for an unbatched one, it
    stays the invocation itself. An event past its ``expires_at`` is not run again: it is
    done, failed, ``EXPIRED``."""

    def __init__(self, invocation: Invocation) -> None:
        self.first = invocation
        self.current = invocation
        self._done: dict[str, Item] = {}  # events decided before the last attempt
        live = self._live(invocation.items)
        if len(live) < len(invocation.items):
            self.current = only(invocation, {i.event_id for i in live})

    @property
    def spent(self) -> bool:
        """Nothing to run: every event of the batch expired."""
        return bool(self.first.items) and not self.current.items

    def more(self, result: Result) -> bool:
        """Whether a retry after ``result`` has anything to run."""
        return not self.first.items or any(
            i.status is not Status.SUCCEEDED and not _expired(i, utc_now()) for i in result.items)

    def after(self, result: Result) -> Result:
        """An attempt that is to be retried: the next runs only its failed events. Returns
        its Result as the retry note shows it: the events to retry pending again."""
        if not self.first.items:
            return result
        self._done.update((i.invocation_id, i) for i in result.items
                          if i.status is Status.SUCCEEDED)
        again = self._live([replace(i, status=Status.PENDING, error=None) for i in result.items
                            if i.status is not Status.SUCCEEDED])
        self.current = only(self.current, {i.event_id for i in again})
        return self.final(replace(result, items=tuple(again)))

    def final(self, result: Result) -> Result:
        """The last attempt's Result, with the events decided before it, in the batch's
        order; failed if any of them failed or expired."""
        if not self._done:
            return result
        latest = {i.invocation_id: i for i in result.items}
        items = tuple(self._done.get(i.invocation_id) or latest[i.invocation_id]
                      for i in self.first.items)
        bad = sum(1 for i in items if i.status is not Status.SUCCEEDED)
        if bad and result.status is Status.SUCCEEDED:  # the rest expired
            result = replace(result, status=Status.FAILED, failure=Failure.ERROR,
                             error=f"{bad} of {len(items)} events failed or expired")
        return replace(result, items=items)

    def _live(self, items: Sequence[Item]) -> list[Item]:
        """Those of ``items`` that have not expired; the others are done."""
        live: list[Item] = []
        if not items:  # not a batch: no clock to read
            return live
        now = utc_now()
        for item in items:
            if _expired(item, now):
                self._done[item.invocation_id] = replace(item, status=Status.FAILED,
                                                         error=EXPIRED)
            else:
                live.append(item)
        return live


def _expired(item: Item, now: str) -> bool:
    return item.expires_at is not None and item.expires_at <= now


def only(invocation: Invocation, event_ids: Collection[str]) -> Invocation:
    """The batch ``invocation`` narrowed to the events ``event_ids`` (its function input
    and its items), under the same id."""
    events = [e for e in strict_loads(invocation.event.data) if e["id"] in event_ids]
    return replace(invocation, event=replace(invocation.event, data=dumps(events)),
                   items=tuple(i for i in invocation.items if i.event_id in event_ids))


def per_event(letter: DeadLetter, result: Result) -> list[DeadLetter]:
    """A batch's dead letter as one per event that failed (``expired`` for those that
    expired): each holds a batch of that event alone, under an id of its own (so that its
    redrive writes a Result of its own, not over the batch's)."""
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
                               reason=Reason.EXPIRED if item.error == EXPIRED else letter.reason,
                               invocation=replace(alone, id=ident,
                                                  event=replace(alone.event, id=ident))))
    return letters
