"""The starter's core: one event in, its invocations queued, or a dead letter saying why not.

    start(event) ─► the functions subscribed to its source (``plan_invocations``)
                 ─► skip those that already started (a redelivered event)
                 ─► pending Results, then invocations, written and acknowledged
                 └► an invocation too large to queue: the event is dead-lettered and each
                    of its invocations gets a failed Result saying so

A broker that is down is waited for (the event stays unacknowledged meanwhile); nothing an
event contains can make the starter fail.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from typing import Protocol

from pipeline import deadletters
from pipeline.deadletters import Origin, Reason
from pipeline.errors import PayloadTooLarge
from pipeline.execution import failed, pending, plan_invocations
from pipeline.executor import ResultLog, durably
from pipeline.finals import RecentFinals
from pipeline.grouped import GroupWrite
from pipeline.records import Event, Failure, Invocation, Position, Result
from pipeline.registry import Registry

log = logging.getLogger(__name__)


class Queue(Protocol):
    """Each call writes and waits for the acknowledgement of every record;
    ``BrokerUnavailable`` or ``PayloadTooLarge`` when it could not."""

    async def write_pending(self, results: Sequence[Result]) -> None: ...

    async def enqueue_many(self, invocations: Sequence[Invocation]) -> None: ...


class Starter:
    def __init__(self, registry: Registry, results: ResultLog, queue: Queue,
                 finals: RecentFinals) -> None:
        self._registry = registry
        self._results = results
        self._finals = finals
        # the events the starter handles at once share their writes (``pipeline.grouped``)
        self._pending = GroupWrite(queue.write_pending)
        self._invocations = GroupWrite(queue.enqueue_many)

    async def start(self, event: Event, source: str, origin: Origin) -> int:
        """Queue ``event``'s invocations; returns how many were queued."""
        position = Position(origin.partition, origin.offset)
        invocations = [i for i in plan_invocations(event, self._registry, source, position)
                       if not self._finals.started(i.id)]
        if not invocations:
            return 0
        # Pending Results first, and each write retried on its own: once an invocation is
        # queued it may run and end at once, and its pending Result written again by a retry
        # of both could land after the final one. An invocation queued twice runs once.
        try:
            await durably(f"pending Results of event {event.id}",
                          partial(self._pending.write, [pending(i) for i in invocations]))
            await durably(f"invocations of event {event.id}",
                          partial(self._invocations.write, invocations))
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
        for invocation in invocations:
            result = failed(invocation, reason, Failure.START)
            await durably(f"result of invocation {invocation.id}",
                          partial(self._results.write, result))
        log.error("event %s at %s dead-lettered: %s", event.id, origin.key, reason)
