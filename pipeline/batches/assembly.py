"""A batch, from the events gathered to the one Invocation that runs them (pure logic).

The function's input is the JSON list of the events as their topic holds them (CloudEvents
JSON, as one event is given to an unbatched function), in offset order. The Invocation's
``items`` name each event, under the id it would have had unbatched, and where it lies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pipeline.batches.policy import Batching
from pipeline.deadletters import Origin
from pipeline.ids import batch_invocation_id, invocation_id
from pipeline.records import Event, Invocation, Item, Position, utc_now
from pipeline.registry import Registry
from pipeline.specs import Subscription

BATCH_TYPE = "faasflow.batch"
ITEM_BYTES = 512  # what an event adds besides its record: its item, in the invocation
                  # and in the Result, and the list's punctuation


@dataclass(frozen=True, slots=True)
class Pending:
    """An event waiting in a batch: where it was read and its record (CloudEvents JSON)."""

    event: Event
    origin: Origin
    record: bytes

    @property
    def size(self) -> int:
        """What it takes of a batch's room: a batch holds as many bytes as one event
        record may take (``SizeBudget.event_record``), so that its invocation fits wherever
        an unbatched one does; an event alone always fits, being within its own budget."""
        return len(self.record) + ITEM_BYTES


def invocation(function: str, source: str, pending: list[Pending],
               batching: Batching = Batching(), replay_id: str = "") -> Invocation:
    """The batch invocation of ``pending`` (in any order: the batch is in offset order).
    An event that came twice (the same ``source`` and ``id``, as CloudEvents defines
    identity) is in it once, at its first place."""
    once: dict[tuple[str, str], Pending] = {}
    for p in sorted(pending, key=lambda p: (p.origin.partition, p.origin.offset)):
        once.setdefault((p.event.source, p.event.id), p)
    ordered = list(once.values())
    events = [p.event for p in ordered]
    ident = batch_invocation_id(source, events, function, replay_id)
    first = events[0]
    batch = Event(id=ident, source=source, type=BATCH_TYPE, time=first.time,
                  datacontenttype="application/json",
                  data=b"[" + b",".join(p.record for p in ordered) + b"]")
    items = tuple(
        Item(event_id=p.event.id, invocation_id=invocation_id(source, p.event, function,
                                                              replay_id),
             event_position=Position(p.origin.partition, p.origin.offset),
             expires_at=expiry(p.event, batching.max_record_age_s),
             subject=p.event.subject if batching.ordered else None)
        for p in ordered)
    return Invocation(id=ident, function=function, event=batch, source=source,
                      replay_id=replay_id, items=items, split_on_error=batching.split_on_error,
                      ordered=batching.ordered)


def expiry(event: Event, max_age_s: int | None) -> str | None:
    """When ``event`` is too old to run: its time plus ``max_age_s``, in the form of
    ``records.utc_now`` (an event whose time is not RFC 3339 is as old as now)."""
    if max_age_s is None:
        return None
    try:
        at = datetime.fromisoformat(event.time)
    except ValueError:
        return utc_now(after_s=max_age_s)
    at = (at if at.tzinfo else at.replace(tzinfo=UTC)) + timedelta(seconds=max_age_s)
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def subscribed(event: Event, registry: Registry, source: str) -> list[Subscription]:
    """The batched subscriptions to ``source`` whose filter matches ``event``."""
    return [s for s in registry.subscribers(source)
            if s.batching.batched and (s.filter is None or s.filter.matches(event))]
