"""The pipeline's writes to Kafka: Results, invocations and dead letters.

One ``Writer`` serves the starter and the executor (``ResultLog`` and ``Queue`` ports) and
the gateway's synchronous calls: every Result carries its status in a header (what
``pipeline.finals`` reads), and what this process wrote final is remembered at once.

Results and invocations are group-committed (``pipeline.grouped``): what every caller asks
for while a write is on its way goes out together in the next one, in batches built per
partition (``Publisher.publish_bulk``). One write at a time per topic also keeps the
producer's per-partition queue free for those batches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from functools import partial
from typing import TypeVar

from pipeline.deadletters import DeadLetter
from pipeline.errors import BrokerUnavailable, FaasflowError
from pipeline.finals import STATUS_HEADER, RecentFinals, status_headers
from pipeline.grouped import GroupWrite
from pipeline.kafka import Publisher
from pipeline.kafka.publisher import Keyed
from pipeline.records import Invocation, Result, Status, dumps
from pipeline.topics import Topics

log = logging.getLogger(__name__)
T = TypeVar("T")
PENDING_HEADERS = [(STATUS_HEADER, Status.PENDING.value.encode())]


class Writer:
    def __init__(self, publisher: Publisher, topics: Topics,
                 finals: RecentFinals | None = None) -> None:
        self._publisher = publisher
        self._topics = topics
        self._finals = finals
        self._notes: dict[str, asyncio.Task[None]] = {}  # the latest note of each invocation
        self.failed_at: float | None = None  # when a write last failed (monotonic)
        self._results = GroupWrite(partial(self._bulk, topics.results))
        self._invocations = GroupWrite(partial(self._bulk, topics.invocations))

    async def _bulk(self, topic: str, records: Sequence[Keyed]) -> None:
        await self._watched(self._publisher.publish_bulk(topic, records))

    async def _watched(self, write: Awaitable[T]) -> T:
        try:
            return await write
        except BrokerUnavailable:
            self.failed_at = time.monotonic()
            raise

    async def write(self, result: Result) -> None:
        """Write and wait for the acknowledgement, after the states of the invocation noted
        before it: a ``running`` note still on its way must not land after a final Result
        and hide it in the compacted log (the producer orders records as they are sent, and
        a note's send can wait for room in a busy partition's batch)."""
        noted = self._notes.get(result.invocation_id)
        if noted is not None:
            await asyncio.wait([noted])
        await self._publish(result)

    async def _publish(self, result: Result) -> None:
        await self._results.write([(result.invocation_id, dumps(result.to_dict()),
                                    status_headers(result))])
        if self._finals is not None and (result.status.final or
                                         result.status is Status.RUNNING):
            self._finals.add(result.invocation_id, result.status.final, result.redrive)

    def note(self, result: Result) -> None:
        """Write without waiting (a non-final state), after the notes before it."""
        ident = result.invocation_id
        task = asyncio.create_task(self._note(result, self._notes.get(ident)))
        self._notes[ident] = task
        task.add_done_callback(lambda done: self._forget_note(ident, done))

    def _forget_note(self, ident: str, task: asyncio.Task[None]) -> None:
        if self._notes.get(ident) is task:
            del self._notes[ident]

    async def _note(self, result: Result, before: asyncio.Task[None] | None) -> None:
        if before is not None:
            await asyncio.wait([before])
        try:
            await self._publish(result)
        except FaasflowError as exc:  # a later write supersedes it anyway
            log.warning("%s state of invocation %s not written: %s", result.status,
                        result.invocation_id, exc.message)

    async def dead_letter(self, letter: DeadLetter) -> None:
        await self._watched(self._publisher.publish(self._topics.deadletter, letter.key,
                                                    letter.encode()))

    async def enqueue(self, invocation: Invocation) -> None:
        await self.enqueue_many([(invocation.queue_key, dumps(invocation.to_dict()))])

    async def write_pending(self, records: Sequence[tuple[str, bytes]]) -> None:
        """Pending Results (encoded: invocation id and record), each acknowledged before
        this returns."""
        await self._results.write([(key, value, PENDING_HEADERS) for key, value in records])

    async def enqueue_many(self, records: Sequence[tuple[str, bytes]]) -> None:
        """Invocations (encoded: ``Invocation.queue_key`` and record), each acknowledged before this
        returns."""
        await self._invocations.write([(key, value, ()) for key, value in records])

    async def close(self) -> None:
        """Wait for the notes still being written."""
        await asyncio.gather(*self._notes.values(), return_exceptions=True)
