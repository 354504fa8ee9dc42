"""Running replays inside workers: exactly one worker runs a given replay, the one assigned
the invocations partition its id hashes to (as connectors are placed, see
``pipeline.worker.connectors``). When that worker dies, Kafka gives the partition to
another, which resumes the replay from its last checkpoint.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

from connectors.base import describe, retrying
from pipeline import filters
from pipeline.errors import PermanentError, RetryableError
from pipeline.finals import RecentFinals
from pipeline.kafka import CompactedView, Publisher, Record
from pipeline.kafka.ranges import read_ranges
from pipeline.observability.logs import log_context
from pipeline.registry import Registry
from pipeline.replays.ranges import Ranges
from pipeline.replays.records import Progress, ReplayRequest, Replays, encode, progress_key
from pipeline.replays.runner import Runner, planner
from pipeline.settings import KafkaSettings
from pipeline.topics import Topics
from pipeline.writer import Writer

log = logging.getLogger(__name__)


class KafkaSource:
    """``runner.Source`` over one event topic."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self._kafka = kafka
        self._topic = topic

    def read(self, ranges: Ranges, max_records: int) -> AsyncIterator[list[Record]]:
        return read_ranges(self._kafka, self._topic, ranges, max_records)


class KafkaCheckpoints:
    """``runner.Checkpoints`` on the replays topic."""

    def __init__(self, publisher: Publisher, topic: str) -> None:
        self._publisher = publisher
        self._topic = topic

    async def save(self, progress: Progress) -> None:
        await self._publisher.publish(self._topic, progress_key(progress.replay_id),
                                      encode(progress))


class WorkerReplays:
    """Follows the replays topic and runs the unfinished replays this worker owns."""

    def __init__(self, kafka: KafkaSettings, topics: Topics, registry: Registry,
                 writer: Writer, publisher: Publisher, finals: RecentFinals,
                 finals_view: CompactedView) -> None:
        self._kafka = kafka
        self._topics = topics
        self._registry = registry
        self._writer = writer
        self._finals = finals
        self._finals_view = finals_view
        self._checkpoints = KafkaCheckpoints(publisher, topics.replays)
        self.replays = Replays()
        self._view = CompactedView(kafka, topics.replays, self._apply)
        self._changed = asyncio.Event()
        self._owned: set[int] = set()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._worker = f"{socket.gethostname()}:{os.getpid()}"
        self._task: asyncio.Task[None] | None = None

    def owner_partition(self, replay_id: str) -> int:
        return zlib.crc32(replay_id.encode()) % self._kafka.partitions

    async def start(self) -> None:
        await self._view.start()
        self._task = asyncio.create_task(self._follow(), name="replays")

    def _apply(self, key: bytes, value: bytes | None) -> None:
        self.replays.apply(key, value)
        self._changed.set()

    async def _follow(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            self.reconcile()

    def assign(self, partitions: set[int]) -> None:
        """The invocations partitions this worker was assigned: it runs their replays."""
        self._owned = set(partitions)
        self.reconcile()

    def reconcile(self) -> None:
        wanted = {r.id: r for r in self.replays.unfinished()
                  if self.owner_partition(r.id) in self._owned}
        for ident, task in list(self._running.items()):
            if ident in wanted:
                continue
            if self.owner_partition(ident) not in self._owned:  # moved: its new owner resumes
                task.cancel()
            if self.owner_partition(ident) not in self._owned or task.done():
                del self._running[ident]
        for ident, request in wanted.items():
            if ident not in self._running:
                with log_context(replay_id=ident, source=request.source):  # the task's lines
                    self._running[ident] = asyncio.create_task(self._run(request),
                                                               name=f"replay:{ident}")

    def _stopping(self, replay_id: str) -> Callable[[], bool]:
        def stopping() -> bool:
            request = self.replays.requests.get(replay_id)
            return request is None or request.cancelled_at is not None
        return stopping

    async def _run(self, request: ReplayRequest) -> None:
        """Run the replay; after a broker error, resume from its last checkpoint."""
        log.info("replay %s of source %s: %d records to read", request.id, request.source,
                 request.total)
        async for attempt in retrying(f"replay {request.id}", (RetryableError,),
                                      lambda _: None, base_s=1.0, cap_s=30.0):
            with attempt:
                runner = await self._resume(request)
                try:
                    if runner.progress.error is not None:
                        raise PermanentError(runner.progress.error)
                    await runner.run()
                except PermanentError as exc:
                    await runner.fail(describe(exc))
                except RetryableError:
                    raise
                except Exception as exc:  # a bug of ours: say so, rather than retry it forever
                    log.exception("replay %s crashed", request.id)
                    await runner.fail(f"internal error: {describe(exc)}")

    async def _resume(self, request: ReplayRequest) -> Runner:
        """A runner from the replay's last checkpoint, whoever wrote it."""
        await self._view.sync()
        progress = self.replays.progress.get(request.id) or Progress.start(request)
        progress = replace(progress, worker=self._worker)
        if progress.planned != progress.next:
            # A runner stopped inside its window: what it queued, and what of that started,
            # must be known before deciding what to queue again.
            log.info("replay %s: resuming from its checkpoint %s", request.id, progress.next)
            await self._finals_view.sync()
        try:
            match = filters.parse(request.filter).matches if request.filter else None
        except PermanentError as exc:  # checked when asked for: the language changed since
            match, progress = None, replace(progress, error=exc.message)
        return Runner(request, progress, planner(request, self._registry, match),
                      KafkaSource(self._kafka, self._topics.events(request.source)),
                      self._writer, self._checkpoints, self._finals, self._stopping(request.id),
                      limit=self._kafka.message_bytes)

    def problems(self) -> list[str]:
        problem = self._view.problem()
        return [problem] if problem else []

    async def stop(self) -> None:
        tasks = [*self._running.values(), *([self._task] if self._task else [])]
        self._running.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._view.stop()
