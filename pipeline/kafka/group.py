"""A consumer group member that hands out records one by one, takes their acknowledgements
in any order, and commits, per partition, only up to the oldest record not yet
acknowledged: a record is never committed before the work it started is done.

The worker's starter reads the event topics through it, and its executor the invocations.
The event topics appear at run time (one per source); Faust subscribes by name only, drops
a subscription change that arrives while it rebalances, and can mark a record read that
never reached its agent (CI saw new sources' events go unread for minutes). Here the
subscription is aiokafka's own, changed with ``follow``, and nothing is delivered or
committed outside this module. Records come ``getmany``'s batch at a time, not through
Faust's per-record delivery, which held the executor to some 250 invocations a second
with its queue full and its slots idle (``python -m bench throughput``, 2026-12-02).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from pipeline.errors import BrokerUnavailable
from pipeline.kafka.admin import GroupProbe
from pipeline.settings import KafkaSettings

log = logging.getLogger(__name__)

Partition = tuple[str, int]
Revoked = Callable[[set[Partition]], Awaitable[None]]
Assigned = Callable[[frozenset[Partition]], Awaitable[None]]
COMMIT_EVERY_S = 1.0
RETRY_S = 1.0
MAX_RECORDS = 500
RENEW_AFTER_FAILURES = 5
STEADY_WAIT_S = 30.0
HEARTBEAT_START_S = 0.05
KEEP_ALIVE_S = 5.0  # at most; a quarter of max_poll_interval_s when that is shorter
# How often a member asks for metadata, and so how soon the group's leader sees partitions
# it assigned without: a topic created a moment ago is not in every broker's metadata yet on
# a cluster, and aiokafka's default (five minutes) left a new source unread that long.
METADATA_MAX_AGE_MS = 5000


@dataclass(frozen=True, slots=True)
class Delivery:
    topic: str
    partition: int
    offset: int
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


class _Acks:
    """Per partition: the offsets handed out and not yet committable, in order, each with
    whether it is acknowledged; the offset to commit is the first one not acknowledged.
    An ``OrderedDict`` finds its first entry at once; a dict scans past every entry deleted
    from its front since it last grew (3.7% of the worker's time, in a profile)."""

    def __init__(self) -> None:
        self._open: dict[Partition, OrderedDict[int, bool]] = {}
        self._next: dict[Partition, int] = {}
        self._committed: dict[Partition, int] = {}

    def handed(self, partition: Partition, offset: int) -> None:
        records = self._open.get(partition)
        if records is None:
            records = self._open[partition] = OrderedDict()
        records[offset] = False

    def done(self, partition: Partition, offset: int) -> None:
        records = self._open.get(partition)
        if records is None or offset not in records:
            return  # of a partition revoked since: its new owner redoes it
        records[offset] = True
        while records:
            first, acknowledged = next(iter(records.items()))
            if not acknowledged:
                break
            records.popitem(last=False)
            self._next[partition] = first + 1

    def committable(self, partitions: Iterable[Partition] | None = None) -> dict[Partition, int]:
        wanted = self._next.keys() if partitions is None else partitions
        return {p: self._next[p] for p in wanted
                if p in self._next and self._committed.get(p) != self._next[p]}

    def committed(self, offsets: dict[Partition, int]) -> None:
        self._committed.update(offsets)

    def drop(self, partitions: Iterable[Partition]) -> None:
        for p in partitions:
            self._open.pop(p, None)
            self._next.pop(p, None)
            self._committed.pop(p, None)


class GroupReader(ConsumerRebalanceListener):  # type: ignore[misc]
    """Reads the topics it is told to ``follow`` as a member of ``group``.

    ``on_revoked`` is awaited when partitions are taken away, before their acknowledged
    offsets are committed: it stops the work of theirs still running, which their new owner
    redoes from the committed offset. ``on_assigned`` is awaited with each new assignment,
    once its starting offsets are decided.

    A partition the group never committed in starts where the group ``inherit_from``
    committed, if it did: the group that read those topics before this one (the starter and
    the executor read theirs in Faust's group until 2026-12), else at its beginning.
    """

    def __init__(self, kafka: KafkaSettings, group: str, *, fetch_max_wait_ms: int,
                 max_poll_interval_s: float, on_revoked: Revoked,
                 on_assigned: Assigned | None = None,
                 inherit_from: str | None = None) -> None:
        self.group = group
        self._kafka = kafka
        self._on_revoked = on_revoked
        self._on_assigned = on_assigned
        self._inherit_from = inherit_from
        self._settled: set[TopicPartition] = set()  # whose start this member looked up
        self._options: dict[str, Any] = dict(
            bootstrap_servers=kafka.bootstrap_servers(), group_id=group,
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_partition_fetch_bytes=kafka.message_bytes + 65536,
            fetch_max_wait_ms=fetch_max_wait_ms,
            session_timeout_ms=int(kafka.session_timeout_s * 1000),
            heartbeat_interval_ms=int(min(3.0, kafka.session_timeout_s / 3) * 1000),
            max_poll_interval_ms=int(max_poll_interval_s * 1000),
            metadata_max_age_ms=METADATA_MAX_AGE_MS)
        self._consumer: AIOKafkaConsumer | None = None  # made on the loop that runs it
        self._acks = _Acks()
        self._topics: set[str] = set()
        self._subscribed = asyncio.Event()
        self._assigned: frozenset[Partition] = frozenset()
        self.rebalancing = False
        self._steady = asyncio.Event()  # set when a rebalance ends
        self._generation = 0  # of the assignment: a batch fetched before a rebalance ends
        self._committer: asyncio.Task[None] | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._keep_alive_s = min(KEEP_ALIVE_S, max_poll_interval_s / 4)
        self._polling = asyncio.Lock()  # one getmany at a time: the caller's or the keeper's
        self._polled_at = time.monotonic()
        self._stopped = False

    @property
    def assigned(self) -> frozenset[Partition]:
        return self._assigned

    async def start(self) -> None:
        await self._open()
        self._committer = asyncio.create_task(self._commit_every(), name=f"{self.group}-commits")
        self._keeper = asyncio.create_task(self._keep_alive(), name=f"{self.group}-keeper")

    async def stop(self) -> None:
        self._stopped = True
        for task in (self._committer, self._keeper):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self._consumer is not None:
            await self._commit()
            await self._consumer.stop()

    async def _open(self) -> None:
        self._consumer = AIOKafkaConsumer(**self._options)
        await self._consumer.start()
        if self._topics:
            self._consumer.subscribe(topics=sorted(self._topics), listener=self)

    async def _renew(self, why: str) -> None:
        """A new consumer in place of one whose group coordination died (aiokafka ends it
        for good on some races; see ``follow``): the group sees this member leave, and join."""
        log.error("%s: %s; starting a new consumer", self.group, why)
        await self._settle(set(self._assigned))
        old, self._consumer = self._consumer, None
        if old is not None:
            try:
                await old.stop()
            except Exception as exc:
                # stop() ends at the dead coordination's error, before it closes the
                # fetcher and the connections: close those here
                log.debug("%s: stopping the old consumer: %r", self.group, exc)
                with contextlib.suppress(Exception):
                    await old._fetcher.close()
                with contextlib.suppress(Exception):
                    await old._client.close()
        self._steady.clear()
        await self._open()

    async def follow(self, topics: Iterable[str]) -> None:
        """Read ``topics`` too (they must exist): the group rebalances to assign them.

        The new subscription revokes every partition, and aiokafka commits nothing for a
        subscription it has replaced: so the partitions are settled here first, while their
        offsets can still be committed."""
        new = set(topics) - self._topics
        if not new:
            return
        if self._topics:
            await self._steady_group()
        assert self._consumer is not None, "follow() comes after start()"
        self._topics |= new
        await self._settle(set(self._assigned))
        self._steady.clear()
        self._consumer.subscribe(topics=sorted(self._topics), listener=self)
        self._subscribed.set()
        log.info("%s now reads %s", self.group, ", ".join(sorted(new)))

    async def _steady_group(self) -> None:
        """Wait (a while) until the last rebalance has ended, and a moment more: aiokafka
        starts its heartbeat task as a rebalance ends, and a subscription change before
        that task first runs cancels it unstarted, which kills the consumer's group
        coordination (awaiting the cancelled task raises ``CancelledError`` into it)."""
        try:
            await asyncio.wait_for(self._steady.wait(), STEADY_WAIT_S)
        except TimeoutError:
            log.warning("%s: still rebalancing after %gs; changing the subscription anyway",
                        self.group, STEADY_WAIT_S)
        await asyncio.sleep(HEARTBEAT_START_S)

    async def deliveries(self) -> AsyncIterator[Delivery]:
        """Every record of the assigned partitions, each once per assignment, until
        ``stop``; a broker that fails is retried, a consumer that broke is replaced:
        nothing is raised."""
        await self._subscribed.wait()
        failures = 0
        while not self._stopped:
            consumer = self._consumer
            assert consumer is not None
            try:
                async with self._polling:
                    batches = await consumer.getmany(timeout_ms=1000, max_records=MAX_RECORDS)
                    self._polled_at = time.monotonic()
                failures = 0
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                if self._stopped:
                    return
                await self._renew("its group coordination was cancelled")
                continue
            except Exception as exc:
                if self._stopped:
                    return
                failures += 1
                if failures >= RENEW_AFTER_FAILURES:
                    await self._renew(f"fetching failed {failures} times in a row ({exc!r})")
                    failures = 0
                else:
                    log.warning("%s: fetching failed (%r); trying again", self.group, exc)
                    await asyncio.sleep(RETRY_S)
                continue
            generation = self._generation
            for tp, records in batches.items():
                partition = (tp.topic, tp.partition)
                for record in records:
                    if generation != self._generation or partition not in self._assigned:
                        break  # rebalanced meanwhile: read again from what was committed
                    self._acks.handed(partition, record.offset)
                    yield Delivery(tp.topic, tp.partition, record.offset, record.value,
                                   tuple(record.headers or ()))

    async def _keep_alive(self) -> None:
        """Poll, with every partition paused, while the caller takes no records (its
        in-flight budget is full of slow invocations): aiokafka leaves the group when a
        member has not polled for ``max_poll_interval_s``, and the rebalance would hand
        every record in flight out again. Records fetched for a paused partition are
        dropped unread and fetched again once it resumes."""
        while True:
            await asyncio.sleep(self._keep_alive_s)
            consumer = self._consumer
            if (consumer is None or self._polling.locked()
                    or time.monotonic() - self._polled_at < self._keep_alive_s):
                continue
            async with self._polling:
                held = consumer.assignment() - consumer.paused()
                consumer.pause(*held)
                try:
                    got = await consumer.getmany(timeout_ms=0)
                    self._polled_at = time.monotonic()
                    for tp, records in got.items():  # assigned meanwhile, so not paused:
                        with contextlib.suppress(Exception):  # to be fetched again
                            consumer.seek(tp, records[0].offset)
                except Exception as exc:  # the caller's next poll meets it, and handles it
                    log.debug("%s: polling to stay in the group failed (%r)", self.group, exc)
                finally:
                    consumer.resume(*(held & consumer.assignment()))

    def done(self, delivery: Delivery) -> None:
        """The work ``delivery`` started is done: its offset may be committed."""
        self._acks.done((delivery.topic, delivery.partition), delivery.offset)

    async def seek(self, partition: Partition, offset: int) -> None:
        if self._consumer is not None and partition in self._assigned:
            self._consumer.seek(TopicPartition(*partition), offset)

    async def _commit_every(self) -> None:
        while True:
            await asyncio.sleep(COMMIT_EVERY_S)
            await self._commit()

    async def _commit(self, partitions: Iterable[Partition] | None = None) -> None:
        offsets = self._acks.committable(partitions)
        if not offsets or self._consumer is None:
            return
        try:
            await self._consumer.commit({TopicPartition(*p): o for p, o in offsets.items()})
        except (CommitFailedError, KafkaError) as exc:  # the next turn tries again
            log.warning("%s: committing offsets failed (%r)", self.group, exc)
            return
        self._acks.committed(offsets)

    # ConsumerRebalanceListener

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.rebalancing = True
        self._steady.clear()
        await self._settle({(tp.topic, tp.partition) for tp in revoked} & self._assigned)

    async def _settle(self, lost: set[Partition]) -> None:
        """Stop handing out records of ``lost`` (what was fetched of them is read again
        from the committed offset), let their work end, commit what is done."""
        self._generation += 1
        if not lost:
            return
        self._assigned = self._assigned - lost
        await self._on_revoked(lost)
        await self._commit(lost)
        self._acks.drop(lost)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._generation += 1
        self._assigned = frozenset((tp.topic, tp.partition) for tp in assigned)
        self._acks.drop(self._assigned)  # read again from what the group committed
        if self._inherit_from is not None and assigned:
            consumer = self._consumer
            assert consumer is not None
            # nothing is fetched from where the group stands until the start is decided
            # (aiokafka drops records of a paused partition already fetched)
            consumer.pause(*assigned)
            try:
                await self._inherit(self._inherit_from, assigned)
            finally:  # unless a new subscription replaced the assignment meanwhile
                consumer.resume(*(assigned & consumer.assignment()))
        if self._on_assigned is not None:
            await self._on_assigned(self._assigned)
        self.rebalancing = False
        self._steady.set()

    async def _inherit(self, group: str, assigned: set[TopicPartition]) -> None:
        consumer = self._consumer
        assert consumer is not None
        try:
            new = assigned - self._settled
            fresh = [tp for tp in new if await consumer.committed(tp) is None]
            if fresh:
                probe = GroupProbe(self._kafka, group)
                await probe.start()
                try:
                    _, found = await probe.offsets((tp.topic, tp.partition) for tp in fresh)
                finally:
                    await probe.stop()
                offsets = {TopicPartition(*p): offset for p, offset in found.items()}
                for tp, offset in offsets.items():
                    consumer.seek(tp, offset)
                if offsets:
                    await consumer.commit(offsets)
                    log.info("%s: took over %s's offsets in %s", self.group, group,
                             ", ".join(f"{tp.topic}[{tp.partition}]" for tp in offsets))
            self._settled |= new
        except (KafkaError, BrokerUnavailable) as exc:
            log.error("%s: could not read %s's offsets (%r); partitions it never committed in "
                      "are read from their beginning", self.group, group, exc)
