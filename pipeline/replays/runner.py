"""The replay runner's core: a fixed range of an event topic in, invocations queued, with
checkpoints that let another runner take over without running an event twice.

    read a batch ─► decode, replay filter ─► plan (``Planner``) ─► skip those started
      ─► encode (each event's text carried into its invocations, ``encoding``)
      ─► checkpoint ahead when the batch reaches past what was marked ``planned``
      ─► pending Results + invocations, written in bulk and acknowledged ─► next batch

Exactly once, from a runner that may die anywhere:
- Invocation ids derive from (source, event, function, replay id): the same event planned
  again is the same invocation, whose Result overwrites itself in the compacted log, and
  the executor does not run an invocation that is final or running (``pipeline.finals``).
- Before writing past ``planned`` the runner checkpoints a new mark ``planned`` (the next
  ``every`` offsets of each partition), together with ``next``: everything before ``next``
  is acknowledged. After a crash, records in ``[next, planned)`` may have been written in
  part. A runner taking over skips the invocations that started (a Result running or
  final exists) and, for the rest of that window, queues the invocation again *without*
  its pending Result: a pending Result written now could land after the final Result of
  the copy queued before the crash, and hide it. The executor runs the two copies once.
- Past ``planned`` nothing was written: pending Results and invocations both go out, the
  pending Results acknowledged first, and each retried on its own (never a pending Result
  sent after its invocation).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Protocol

from pipeline.execution import plan_invocations
from pipeline.executor import durably
from pipeline.ids import invocation_id
from pipeline.kafka import Record
from pipeline.records import Event, Invocation, Position, utc_now
from pipeline.registry import Registry
from pipeline.replays.encoding import (
    Encoded,
    Queue,
    Read,
    decode,
    invocation_record,
    pending_record,
)
from pipeline.replays.ranges import Ranges
from pipeline.replays.records import Progress, ReplayRequest, Status

log = logging.getLogger(__name__)

Planner = Callable[[Event, Position], list[Invocation]]
Match = Callable[[Event], bool]


class Source(Protocol):
    def read(self, ranges: Ranges, max_records: int) -> AsyncIterator[list[Record]]:
        """The records in ``[first, end)`` of each partition, batch by batch, in order
        within a partition."""
        ...




class Checkpoints(Protocol):
    async def save(self, progress: Progress) -> None:
        """Write the checkpoint and wait for the acknowledgement."""
        ...


class Started(Protocol):
    def started(self, invocation_id: str) -> bool:
        """Whether a Result of the invocation running or final is known."""
        ...


def planner(request: ReplayRequest, registry: Registry, match: Match | None) -> Planner:
    """What one event of ``request`` becomes.

    With ``function``: that function runs for every event the replay filter lets through,
    whether or not it is subscribed to the source (a new version usually is not), and
    subscription filters do not apply: the replay filter is the selection. Without it:
    every function subscribed to the source now, each as its subscription (and its
    filter) decides, among the events the replay filter lets through. A shadow replay's
    invocations are marked ``shadow``: they trigger no callbacks or sinks."""
    source, ident, function = request.source, request.id, request.function
    shadow = request.compare_with is not None

    def plan(event: Event, position: Position) -> list[Invocation]:
        if match is not None and not match(event):
            return []
        if function is None:
            return plan_invocations(event, registry, source, position, ident)
        return [Invocation(id=invocation_id(source, event, function, ident), function=function,
                           event=event, source=source, replay_id=ident,
                           event_position=position, shadow=shadow)]

    return plan


@dataclass
class Fed:
    """One batch, planned and encoded: the invocations to write, and the pending Results of
    those outside the window a runner before may have written."""

    read: int
    matched: int = 0
    invoked: int = 0
    ends: dict[int, int] = field(default_factory=dict)  # partition → offset after the batch
    pending: list[Encoded] = field(default_factory=list)
    queued: list[Encoded] = field(default_factory=list)


class Runner:
    """Runs one replay from ``progress`` (its last checkpoint, or its start) to its end,
    until ``stopping()`` (a cancel) says to stop feeding."""

    def __init__(self, request: ReplayRequest, progress: Progress, plan: Planner,
                 source: Source, output: Queue, checkpoints: Checkpoints, started: Started,
                 stopping: Callable[[], bool], *, limit: int, every: int = 5000,
                 batch: int = 1000, interval_s: float = 1.0) -> None:
        """``limit``: the largest record a topic takes; ``every``: how far ahead (offsets
        per partition) each ``planned`` mark reaches; ``batch``: records written per round
        trip; ``interval_s``: how often the counts are checkpointed besides."""
        self.request = request
        self.progress = progress
        self._plan = plan
        self._source = source
        self._output = output
        self._checkpoints = checkpoints
        self._started = started
        self._stopping = stopping
        self._limit = limit
        self._every = every
        self._batch = batch
        self._interval_s = interval_s
        self._saved_at = time.monotonic()
        self._saving = asyncio.Lock()

    def _remaining(self) -> Ranges:
        nexts = self.progress.next
        return {p: (nexts.get(p, first), end) for p, (first, end) in self.request.ranges.items()
                if nexts.get(p, first) < end}

    async def run(self) -> Progress:
        """Feed every remaining record; the final checkpoint says how it ended. Writes wait
        out a broker that is down; errors reading propagate (the caller resumes from the
        last checkpoint, as a runner taking over would).

        Writing overlaps reading and planning, and the writes of two batches overlap: a
        batch's pending Results go out with the previous batch's invocations, in one
        request (the producer sends one request at a time to a broker), where they took a
        round trip each. Each batch still writes its pending Results, acknowledged, before
        its invocations, and batches are counted done in order."""
        window = dict(self.progress.planned)  # what a runner before this one may have written
        announced: asyncio.Task[None] | None = None  # the last batch's pending Results
        queued: deque[asyncio.Task[None]] = deque()  # batches' invocations, oldest first
        try:
            async for batch in self._source.read(self._remaining(), self._batch):
                if self._stopping():
                    break
                fed = self._planned(batch, window)
                if announced is not None:
                    await announced
                while len(queued) > 1:  # at most two batches in flight
                    await queued.popleft()
                announced = asyncio.create_task(self._announce(fed))
                queued.append(asyncio.create_task(
                    self._enqueue(fed, announced, queued[-1] if queued else None)))
            while queued:
                await queued.popleft()
        finally:
            unfinished = [t for t in (announced, *queued) if t is not None and not t.done()]
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        return await self._end(Status.CANCELLED if self._stopping() else Status.DONE)

    def _planned(self, batch: list[Record], window: Mapping[int, int]) -> Fed:
        fed = Fed(read=len(batch))
        for partition, offset, _, value in batch:
            fed.ends[partition] = offset + 1
            read = _decode(value, partition, offset, self._limit)
            if read is None:
                continue
            planned = self._plan(read.event, Position(partition, offset))
            fed.matched += bool(planned)
            fed.invoked += len(planned)
            again = offset < window.get(partition, 0)
            for invocation in planned:
                if again and self._started.started(invocation.id):
                    continue
                if not again:
                    fed.pending.append((invocation.id, pending_record(invocation)))
                fed.queued.append((invocation.queue_key,
                                   invocation_record(invocation, read.carried)))
        return fed

    async def _announce(self, fed: Fed) -> None:
        """Checkpoint a new mark if the batch reaches past ``planned``, then write the
        batch's pending Results."""
        await self._mark_ahead(fed.ends)
        # Pending Results first, each write retried on its own: once an invocation is sent,
        # its pending Result sent again (a retry of both after a lost acknowledgement) could
        # land after its final one. Invocations sent twice run once.
        await durably(f"replay {self.request.id}: {len(fed.pending)} pending Results",
                      partial(self._output.write_pending, fed.pending))

    async def _enqueue(self, fed: Fed, announced: asyncio.Task[None],
                       before: asyncio.Task[None] | None) -> None:
        """Once the batch's pending Results and the batch before are written, write its
        invocations, then count it done."""
        await announced
        if before is not None:
            await before
        await durably(f"replay {self.request.id}: {len(fed.queued)} invocations",
                      partial(self._output.enqueue_many, fed.queued))
        old = self.progress
        self.progress = replace(old, next={**old.next, **fed.ends}, read=old.read + fed.read,
                                matched=old.matched + fed.matched,
                                invoked=old.invoked + fed.invoked)
        if time.monotonic() - self._saved_at >= self._interval_s:
            await self._save()

    async def _mark_ahead(self, ends: Mapping[int, int]) -> None:
        """Checkpoint a new ``planned`` mark before writing past the current one."""
        planned = self.progress.planned
        if all(end <= planned.get(p, 0) for p, end in ends.items()):
            return
        stops = {p: end for p, (_, end) in self.request.ranges.items()}
        ahead = {p: min(stops[p], max(end, planned.get(p, 0)) + self._every)
                 for p, end in ends.items()}
        self.progress = replace(self.progress, planned={**planned, **ahead})
        await self._save()

    async def _save(self) -> None:
        """One checkpoint at a time (two batches' writes may save at once): each holds all
        the progress before it, and lands after it, retries included."""
        async with self._saving:
            self.progress = replace(self.progress, updated_at=utc_now())
            await durably(f"checkpoint of replay {self.request.id}",
                          partial(self._checkpoints.save, self.progress))
            self._saved_at = time.monotonic()

    async def _end(self, status: Status, error: str | None = None) -> Progress:
        self.progress = replace(self.progress, status=status, error=error)
        await self._save()
        log.info("replay %s %s: %d events read, %d matched, %d invocations", self.request.id,
                 status, self.progress.read, self.progress.matched, self.progress.invoked)
        return self.progress

    async def fail(self, error: str) -> Progress:
        """End the replay as failed (a permanent error: its records are unreadable…)."""
        return await self._end(Status.FAILED, error)


def _decode(value: bytes | None, partition: int, offset: int, limit: int) -> Read | None:
    try:
        return decode(value or b"", limit)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        log.warning("replay: skipping undecodable event at partition %d offset %d: %r",
                    partition, offset, exc)
        return None
