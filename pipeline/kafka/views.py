"""Views: a topic kept in memory as it grows (compacted topics from their beginning, a
window of a long one from a time ago), with a read barrier and a health of their own."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka import TopicPartition
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential

from pipeline.errors import BrokerUnavailable
from pipeline.kafka.errors import broker_errors
from pipeline.kafka.publisher import Headers, Written
from pipeline.kafka.reading import consumer, topic_partitions
from pipeline.settings import KafkaSettings

log = logging.getLogger(__name__)

Apply = Callable[[bytes, bytes | None], None]
READ_YOUR_WRITES_S = 10.0


class CompactedView:
    """Keeps an in-memory copy of a compacted topic, applying each record as it arrives.

    Every gateway and worker reads the whole topic (no consumer group), from the start:
    that is how state is rebuilt after a restart. ``sync()`` is a read barrier: it returns
    once everything written before the call has been applied, or raises
    ``BrokerUnavailable`` within ``sync_timeout_s``. A record that cannot be applied is
    skipped and logged; a broker that does not answer is retried with backoff, and
    ``problem()`` says so meanwhile (health checks report it).
    """

    PROBE_S = 5.0  # how often the follower asks the broker for the end offsets
    START_TIMEOUT_S = 600.0

    def __init__(self, kafka: KafkaSettings, topic: str, apply: Apply,
                 sync_timeout_s: float = 30.0) -> None:
        self._kafka = kafka
        self.topic = topic
        self._apply = apply
        self._sync_timeout_s = sync_timeout_s
        self._consumer = consumer(kafka, fetch_max_wait_ms=100)
        self._partitions: list[TopicPartition] = []
        self._positions: dict[int, int] = {}
        self._ends: dict[int, int] = {}
        self._advanced = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._pending_sync: asyncio.Task[None] | None = None
        self._error: str | None = None
        self._probed_at = 0.0
        self.skipped = 0

    async def start(self) -> None:
        try:
            with broker_errors(f"reading {self.topic}"):
                await self._consumer.start()
                self._partitions = await topic_partitions(self._kafka, self.topic)
                self._consumer.assign(self._partitions)
                await self._seek_start()
        except BaseException:
            await self._consumer.stop()
            raise
        self._task = asyncio.create_task(self._follow(), name=f"view:{self.topic}")
        self._task.add_done_callback(self._stopped)
        await self._sync(self.START_TIMEOUT_S)  # a long history takes a while to read

    async def _seek_start(self) -> None:
        await self._consumer.seek_to_beginning(*self._partitions)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    def problem(self) -> str | None:
        """Why this view may be stale, or None while it follows its topic."""
        if self._task is not None and self._task.done():
            return f"{self.topic}: the follower stopped"
        return f"{self.topic}: {self._error}" if self._error else None

    def lag(self) -> int:
        """Records known to exist but not applied yet (as of the last probe)."""
        return sum(max(0, end - self._positions.get(p, 0)) for p, end in self._ends.items())

    def _stopped(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("view of %s stopped: %r", self.topic, task.exception())

    async def _follow(self) -> None:
        """Step after step; a step that fails (the broker, or the client library, failed
        us) is tried again after a backoff that starts over after each success."""
        while True:
            async for attempt in AsyncRetrying(retry=retry_if_exception_type(Exception),
                                               wait=wait_random_exponential(0.2, max=10),
                                               before_sleep=self._failing):
                with attempt:
                    await self._step()

    def _failing(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if self._error is None:
            log.warning("view of %s: %r; retrying", self.topic, exc)
        self._error = f"{type(exc).__name__}: {exc}"[:500]

    async def _step(self) -> None:
        batches = await self._consumer.getmany(timeout_ms=500, max_records=5000)
        unapplied = dict(batches)
        try:
            for tp, messages in batches.items():
                await self._apply_batch(tp, messages)
                del unapplied[tp]
        except BaseException:  # (a StoredView's store failed) read them again on the retry
            for tp, messages in unapplied.items():
                self._consumer.seek(tp, messages[0].offset)
            raise
        if time.monotonic() - self._probed_at > self.PROBE_S:
            # getmany retries a lost broker quietly; asking for the end offsets does not
            with broker_errors(f"reading {self.topic}"):
                async with asyncio.timeout(self._kafka.publish_timeout_s):
                    ends = await self._consumer.end_offsets(self._partitions)
            self._ends = {tp.partition: end for tp, end in ends.items()}
            self._probed_at = time.monotonic()
            if self._error is not None:
                log.info("view of %s: following again", self.topic)
            self._error = None
        async with self._advanced:
            for tp in self._partitions:
                self._positions[tp.partition] = await self._consumer.position(tp)
            self._advanced.notify_all()

    async def _apply_batch(self, tp: TopicPartition, messages: list[Any]) -> None:
        for message in messages:
            self._apply_one(message, tp)

    def _apply_one(self, message: Any, tp: TopicPartition) -> None:
        if message.key is None:
            log.warning("skipping record without key in %s[%d]@%d", tp.topic, tp.partition,
                        message.offset)
            self.skipped += 1
            return
        try:
            self._apply_message(message)
        except Exception:  # one bad record must not stop the view
            self.skipped += 1
            log.exception("skipping undecodable record %s[%d]@%d", tp.topic, tp.partition,
                          message.offset)

    def _apply_message(self, message: Any) -> None:
        self._apply(message.key, message.value)

    def position(self, partition: int) -> int:
        """The offset of the next record to apply from ``partition``."""
        return self._positions.get(partition, 0)

    async def applied(self, written: Written, timeout_s: float = READ_YOUR_WRITES_S) -> bool:
        """Wait (at most ``timeout_s``) until this view has applied ``written``, a record
        this process wrote: a client that reads right after it writes sees its write."""
        return await self.wait_until(lambda: self.position(written.partition) > written.offset,
                                     timeout_s)

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Wait at most ``timeout_s`` for ``predicate`` to hold after an applied batch."""
        try:
            async with asyncio.timeout(timeout_s), self._advanced:
                await self._advanced.wait_for(predicate)
        except TimeoutError:
            return False
        return True

    async def sync(self) -> None:
        """Read barrier; concurrent callers share one end-offsets request."""
        if self._pending_sync is None or self._pending_sync.done():
            self._pending_sync = asyncio.create_task(self._sync(self._sync_timeout_s))
        await asyncio.shield(self._pending_sync)

    async def _sync(self, timeout_s: float) -> None:
        with broker_errors(f"reading {self.topic}"):
            async with asyncio.timeout(self._kafka.publish_timeout_s):
                ends = await self._consumer.end_offsets(self._partitions)

        def caught_up() -> bool:
            return all(self._positions.get(tp.partition, 0) >= end for tp, end in ends.items())

        if not await self.wait_until(caught_up, timeout_s):
            raise BrokerUnavailable(f"{self.topic} not read up to its end within "
                                    f"{timeout_s:g}s ({self.problem() or 'slow'})")


ApplyHeaders = Callable[[bytes, Headers, float], None]


class TailView(CompactedView):
    """Follows a topic from ``since_s`` ago rather than from its beginning, handing each
    record's key, headers and timestamp (seconds) to ``apply``: a bounded window of a log
    that may be long (the worker's memory of recent final Results)."""

    def __init__(self, kafka: KafkaSettings, topic: str, apply: ApplyHeaders,
                 since_s: float) -> None:
        super().__init__(kafka, topic, lambda key, value: None)
        self._apply_headers = apply
        self._since_s = since_s

    async def _seek_start(self) -> None:
        since_ms = int((time.time() - self._since_s) * 1000)
        found = await self._consumer.offsets_for_times({tp: since_ms for tp in self._partitions})
        for tp in self._partitions:
            at = found.get(tp)
            if at is None:  # nothing that recent: start at the end
                await self._consumer.seek_to_end(tp)
            else:
                self._consumer.seek(tp, at.offset)

    def _apply_message(self, message: Any) -> None:
        self._apply_headers(message.key, message.headers or (), message.timestamp / 1000)
