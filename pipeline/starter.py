"""The starter's core: one event in, its invocations queued, or a dead letter saying why not.

    start(event) ─► the functions subscribed to its source (``plan_invocations``)
                 ─► skip those that already started (a redelivered event)
                 ─► pending Results, then invocations, written and acknowledged
                 └► an invocation too large to queue: the event is dead-lettered and each
                    of its invocations gets a failed Result saying so
    batched subscriptions: the event joins their batches (``pipeline.batches``), and
    ``start`` returns once those are queued too

A broker that is down is waited for (the event stays unacknowledged meanwhile); nothing an
event contains can make the starter fail.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from pipeline import deadletters
from pipeline.batches import assembly
from pipeline.batches.assembly import Pending
from pipeline.batches.batcher import Batcher
from pipeline.deadletters import Origin, Reason
from pipeline.errors import PayloadTooLarge
from pipeline.execution import failed, plan_invocations
from pipeline.executor import ResultLog, durably
from pipeline.finals import RecentFinals
from pipeline.observability.logs import log_context
from pipeline.records import Event, Failure, Invocation, Position, dumps
from pipeline.registry import Registry
from pipeline.replays.encoding import Queue, invocation_record, pending_record
from pipeline.specs import Subscription

log = logging.getLogger(__name__)


class Starter:
    def __init__(self, registry: Registry, results: ResultLog, queue: Queue,
                 finals: RecentFinals, batch_room: int) -> None:
        """``batch_room``: the bytes a batch holds (``assembly.Pending.size``)."""
        self._registry = registry
        self._results = results
        self._finals = finals
        self._writes = queue  # it group-commits the writes of the events handled at once
        self._batcher = Batcher(self._queue_batch, batch_room)

    async def start(self, event: Event, source: str, origin: Origin) -> int:
        """Queue ``event``'s invocations, and wait until the batches it joined are queued;
        returns how many invocations were queued or joined."""
        with log_context(event_id=event.id, source=source):
            batched = assembly.subscribed(event, self._registry, source)
            queued = await self._start_each(event, source, origin)
            if batched:
                pending = Pending(event, origin, dumps(event.to_dict()))
                joins = [self._batcher.add(s, source, pending) for s in batched]
                await (joins[0] if len(joins) == 1 else asyncio.gather(*joins))
        return queued + len(batched)

    async def close(self) -> None:
        await self._batcher.close()

    async def _start_each(self, event: Event, source: str, origin: Origin) -> int:
        position = Position(origin.partition, origin.offset)
        invocations = [i for i in plan_invocations(event, self._registry, source, position,
                                                   batched=False)
                       if not self._finals.started(i.id)]
        if not invocations:
            return 0
        # Pending Results first, and each write retried on its own: once an invocation is
        # queued it may run and end at once, and its pending Result written again by a retry
        # of both could land after the final one. An invocation queued twice runs once.
        try:
            await durably(f"pending Results of event {event.id}",
                          partial(self._writes.write_pending, [(i.id, pending_record(i))
                                                        for i in invocations]))
            await durably(f"invocations of event {event.id}",
                          partial(self._writes.enqueue_many, [(i.queue_key,
                                                             invocation_record(i, None))
                                                            for i in invocations]))
        except PayloadTooLarge as exc:
            await self._refuse(event, origin, invocations, exc.message)
            return 0
        log.debug("event %s from %s: %d invocations", event.id, origin.key, len(invocations))
        return len(invocations)

    async def _refuse(self, event: Event, origin: Origin, invocations: list[Invocation],
                      why: str) -> None:
        reason = f"the event is too large to queue: {why}"
        letter = deadletters.of_record(origin, None, Reason.TOO_LARGE, reason)
        await durably(f"dead letter of event {event.id}",
                      partial(self._results.dead_letter, letter))
        await self._refuse_invocations(invocations, reason)
        log.error("event %s at %s dead-lettered: %s", event.id, origin.key, reason)

    async def _refuse_invocations(self, invocations: list[Invocation], reason: str) -> None:
        for invocation in invocations:
            result = failed(invocation, reason, Failure.START)
            await durably(f"result of invocation {invocation.id}",
                          partial(self._results.write, result))

    async def _queue_batch(self, subscription: Subscription, source: str,
                           batch: list[Pending]) -> None:
        """Queue a batch's invocation (not again when it started already: the same batch,
        gathered again after a crash); one too large to queue dead-letters each event."""
        invocation = assembly.invocation(subscription.function, source, batch,
                                         subscription.batching)
        if self._finals.started(invocation.id):
            return
        try:
            await durably(f"pending Result of batch {invocation.id}",
                          partial(self._writes.write_pending,
                                  [(invocation.id, pending_record(invocation))]))
            await durably(f"batch invocation {invocation.id}",
                          partial(self._writes.enqueue_many,
                                  [(invocation.queue_key, invocation_record(invocation, None))]))
        except PayloadTooLarge as exc:
            for each in batch:
                await self._refuse(each.event, each.origin, [], exc.message)
            await self._refuse_invocations([invocation], f"the batch is too large to queue: "
                                           f"{exc.message}")
            return
        log.debug("batch %s of %s: %d events", invocation.id, subscription.function,
                  len(batch))
