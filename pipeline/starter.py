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

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Protocol, TypeVar

from pipeline import deadletters
from pipeline.deadletters import Origin, Reason
from pipeline.errors import PayloadTooLarge
from pipeline.execution import failed, pending, plan_invocations
from pipeline.executor import ResultLog, durably
from pipeline.finals import RecentFinals
from pipeline.records import Event, Failure, Invocation, Position
from pipeline.registry import Registry

log = logging.getLogger(__name__)

T = TypeVar("T")


class Queue(Protocol):
    async def enqueue(self, invocation: Invocation) -> None:
        """Write to the invocations topic and wait for the acknowledgement;
        ``BrokerUnavailable`` or ``PayloadTooLarge`` when it could not."""
        ...


class Starter:
    def __init__(self, registry: Registry, results: ResultLog, queue: Queue,
                 finals: RecentFinals) -> None:
        self._registry = registry
        self._results = results
        self._queue = queue
        self._finals = finals

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
                          partial(self._gather, self._results.write, map(pending, invocations)))
            await durably(f"invocations of event {event.id}",
                          partial(self._gather, self._queue.enqueue, invocations))
        except PayloadTooLarge as exc:
            await self._refuse(event, origin, invocations, exc.message)
            return 0
        log.debug("event %s from %s: %d invocations", event.id, origin.key, len(invocations))
        return len(invocations)

    @staticmethod
    async def _gather(write: Callable[[T], Awaitable[None]], records: Iterable[T]) -> None:
        await asyncio.gather(*(write(record) for record in records))

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
