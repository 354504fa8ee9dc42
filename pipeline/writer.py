"""The pipeline's writes to Kafka: Results, invocations and dead letters.

One ``Writer`` serves the starter and the executor (``ResultLog`` and ``Queue`` ports) and
the gateway's synchronous calls: every Result carries its status in a header (what
``pipeline.finals`` reads), and what this process wrote final is remembered at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from typing import TypeVar

from pipeline.deadletters import DeadLetter
from pipeline.errors import BrokerUnavailable, FaasflowError
from pipeline.finals import RecentFinals, status_headers
from pipeline.kafka import Publisher
from pipeline.records import Invocation, Result, Status, dumps
from pipeline.topics import Topics

log = logging.getLogger(__name__)
T = TypeVar("T")


class Writer:
    def __init__(self, publisher: Publisher, topics: Topics,
                 finals: RecentFinals | None = None) -> None:
        self._publisher = publisher
        self._topics = topics
        self._finals = finals
        self._notes: set[asyncio.Task[None]] = set()
        self.failed_at: float | None = None  # when a write last failed (monotonic)

    async def _watched(self, write: Awaitable[T]) -> T:
        try:
            return await write
        except BrokerUnavailable:
            self.failed_at = time.monotonic()
            raise

    async def write(self, result: Result) -> None:
        await self._watched(self._publisher.publish(
            self._topics.results, result.invocation_id, dumps(result.to_dict()),
            status_headers(result)))
        if self._finals is not None and (result.status.final or
                                         result.status is Status.RUNNING):
            self._finals.add(result.invocation_id, result.status.final, result.redrive)

    def note(self, result: Result) -> None:
        task = asyncio.create_task(self._note(result))
        self._notes.add(task)
        task.add_done_callback(self._notes.discard)

    async def _note(self, result: Result) -> None:
        try:
            await self.write(result)
        except FaasflowError as exc:  # a later write supersedes it anyway
            log.warning("%s state of invocation %s not written: %s", result.status,
                        result.invocation_id, exc.message)

    async def dead_letter(self, letter: DeadLetter) -> None:
        await self._watched(self._publisher.publish(self._topics.deadletter, letter.key,
                                                    letter.encode()))

    async def enqueue(self, invocation: Invocation) -> None:
        await self._watched(self._publisher.publish(self._topics.invocations,
                                                    invocation.function,
                                                    dumps(invocation.to_dict())))

    async def write_pending(self, results: Sequence[Result]) -> None:
        """Pending Results in bulk (a replay's), each acknowledged before this returns."""
        if results:
            await self._watched(self._publisher.publish_many(
                self._topics.results,
                [(r.invocation_id, dumps(r.to_dict())) for r in results],
                status_headers(results[0])))

    async def enqueue_many(self, invocations: Sequence[Invocation]) -> None:
        """Invocations in bulk, each acknowledged before this returns."""
        if invocations:
            await self._watched(self._publisher.publish_many(
                self._topics.invocations,
                [(i.function, dumps(i.to_dict())) for i in invocations]))

    async def close(self) -> None:
        """Wait for the notes still being written."""
        await asyncio.gather(*self._notes, return_exceptions=True)
