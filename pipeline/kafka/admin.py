"""The cluster itself: waiting for it, topics, where a consumer group stands, how far
consumer groups lag behind, offsets by time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    KafkaError,
    NodeNotReadyError,
    NotControllerError,
    TopicAlreadyExistsError,
)
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_delay,
    wait_fixed,
)

from pipeline.errors import BrokerUnavailable
from pipeline.kafka.errors import broker_errors
from pipeline.kafka.reading import consumer, topic_partitions
from pipeline.settings import KafkaSettings
from pipeline.topics import TopicSpec

log = logging.getLogger(__name__)


async def wait_for_broker(kafka: KafkaSettings, timeout_s: float) -> None:
    """Poll until the cluster answers metadata requests (used at start-up)."""
    try:
        async for attempt in AsyncRetrying(retry=retry_if_exception_type(BrokerUnavailable),
                                           stop=stop_after_delay(timeout_s), wait=wait_fixed(0.5),
                                           reraise=True):
            with attempt:
                await _list_topics(kafka)
    except BrokerUnavailable as exc:
        raise BrokerUnavailable(
            f"no Kafka broker at {kafka.bootstrap_servers()} after {timeout_s:.0f}s") from exc


async def _list_topics(kafka: KafkaSettings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers(),
                                request_timeout_ms=3000)
    with broker_errors("listing topics"):
        try:
            await admin.start()
            await admin.list_topics()
        finally:
            await admin.close()


# The cluster answered, but named a broker this client cannot reach yet (one that has just
# started, or stopped) as where to send the request: asked again, with fresh metadata, it
# names another. A cluster that does not answer at all is not retried (BrokerUnavailable).
UNREADY = (NodeNotReadyError, NotControllerError)


async def ensure_topics(kafka: KafkaSettings, specs: Iterable[TopicSpec]) -> None:
    """Create the topics that do not exist yet. An existing topic keeps its settings, unless
    it takes smaller records than the size budget now needs: then it gets its spec's."""
    specs = list(specs)
    with broker_errors("creating topics"):
        async for attempt in AsyncRetrying(retry=retry_if_exception_type(UNREADY),
                                           stop=stop_after_delay(kafka.publish_timeout_s),
                                           wait=wait_fixed(0.5), reraise=True):
            with attempt:
                await _ensure_topics(kafka, specs)


async def _ensure_topics(kafka: KafkaSettings, specs: Sequence[TopicSpec]) -> None:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=kafka.bootstrap_servers(),
        request_timeout_ms=int(kafka.publish_timeout_s * 1000),
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                spec.name,
                num_partitions=spec.partitions,
                replication_factor=kafka.replication_factor,
                topic_configs=spec.config,
            )
            for spec in specs
            if spec.name not in existing
        ]
        if missing:
            with suppress(TopicAlreadyExistsError):  # another process won the race
                await admin.create_topics(missing)
            log.info("created topics %s", [t.name for t in missing])
        await _raise_size_limits(admin, [s for s in specs if s.name in existing])
    finally:
        await admin.close()


async def _raise_size_limits(admin: AIOKafkaAdminClient, specs: Sequence[TopicSpec]) -> None:
    """AlterConfigs replaces a topic's whole configuration, so a topic is given its whole
    spec, and only when its ``max.message.bytes`` is below what the spec asks."""
    wanted = {s.name: s for s in specs if "max.message.bytes" in s.config}
    if not wanted:
        return
    described = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name, {"max.message.bytes": None})
         for name in wanted])
    small = []
    for response in described:
        for _, _, _, name, entries in response.resources:
            current = {entry[0]: entry[1] for entry in entries}.get("max.message.bytes")
            need = wanted[name].config["max.message.bytes"]
            if current is not None and int(current) < int(need):
                small.append(ConfigResource(ConfigResourceType.TOPIC, name,
                                            dict(wanted[name].config)))
    if small:
        await admin.alter_configs(small)
        log.info("raised max.message.bytes of %s", [r.name for r in small])


class _Probe:
    """An admin client and a consumer outside any group, started and stopped together."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._kafka = kafka
        self._admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers(),
                                          request_timeout_ms=int(kafka.publish_timeout_s * 1000))
        self._reader = consumer(kafka)

    async def start(self) -> None:
        with broker_errors(f"starting a {type(self).__name__}"):
            async with asyncio.timeout(self._kafka.publish_timeout_s * 2):
                await self._admin.start()
                await self._reader.start()

    async def stop(self) -> None:
        await self._reader.stop()
        await self._admin.close()


class GroupProbe(_Probe):
    """Where a consumer group stands: the end offsets of partitions, and what the group
    committed in them (the worker's watchdog asks every few seconds)."""

    def __init__(self, kafka: KafkaSettings, group: str) -> None:
        super().__init__(kafka)
        self._group = group

    async def offsets(self, partitions: Iterable[tuple[str, int]]
                      ) -> tuple[dict[tuple[str, int], int], dict[tuple[str, int], int]]:
        """(end offsets, committed offsets) of ``partitions``; a partition the group never
        committed in is missing from the second."""
        tps = [TopicPartition(topic, p) for topic, p in partitions]
        if not tps:
            return {}, {}
        with broker_errors(f"reading the offsets of group {self._group}"):
            async with asyncio.timeout(self._kafka.publish_timeout_s):
                ends = await self._reader.end_offsets(tps)
                committed = await self._admin.list_consumer_group_offsets(self._group,
                                                                        partitions=tps)
        return ({(tp.topic, tp.partition): end for tp, end in ends.items()},
                {(tp.topic, tp.partition): meta.offset for tp, meta in committed.items()
                 if meta is not None and meta.offset >= 0})


@dataclass(frozen=True, slots=True)
class Reads:
    """What one consumer group reads: ``topics``, and of the topics whose names start with
    ``prefix``, those the group has committed in (the topics it follows appear at run time,
    and a topic no member follows has no lag to work off)."""

    group: str
    topics: tuple[str, ...] = ()
    prefix: str | None = None


@dataclass(frozen=True, slots=True)
class Lag:
    """Records written and not yet committed, per consumer group and per topic it reads;
    the partition count of every topic counted; and the records ever written to each topic
    counted or asked for (its end offsets, summed over its partitions)."""

    by_topic: Mapping[str, Mapping[str, int]]  # group -> topic -> lag
    partitions: Mapping[str, int]
    ends: Mapping[str, int] = field(default_factory=dict)

    @property
    def by_group(self) -> dict[str, int]:
        return {group: sum(topics.values()) for group, topics in self.by_topic.items()}

    @property
    def total(self) -> int:
        return sum(self.by_group.values())


class LagProbe(_Probe):
    """The lag of consumer groups: for every partition they read, its end offset less the
    offset the group committed in it. A partition the group never committed in counts from
    its log start, where a member of the group would begin (``auto_offset_reset`` is
    earliest); a committed offset the log has since deleted past counts from the log start
    too. One admin client and one consumer for all the groups, kept between readings.
    ``ends_under``: the end offsets of every topic whose name starts with it are read too,
    whether a group reads it or not (the event topics of sources nobody subscribes to)."""

    def __init__(self, kafka: KafkaSettings, reads: Sequence[Reads],
                 ends_under: str | None = None) -> None:
        super().__init__(kafka)
        self._reads = tuple(reads)
        self._ends_under = ends_under

    async def read(self) -> Lag:
        with broker_errors("reading the consumer lag"):
            async with asyncio.timeout(self._kafka.publish_timeout_s * 2):
                return await self._read()

    async def _read(self) -> Lag:
        partitions = {t["topic"]: [p["partition"] for p in t["partitions"]]
                      for t in await self._admin.describe_topics()
                      if t["error_code"] == 0 and t["partitions"]}
        committed = {r.group: await self._committed(r.group) for r in self._reads}
        counted = {r.group: sorted(_topics_of(r, partitions, committed[r.group]))
                   for r in self._reads}
        measured = {topic for topics in counted.values() for topic in topics}
        if self._ends_under is not None:
            measured |= {topic for topic in partitions if topic.startswith(self._ends_under)}
        tps = sorted(TopicPartition(topic, p) for topic in measured for p in partitions[topic])
        starts = await self._reader.beginning_offsets(tps) if tps else {}
        ends = await self._reader.end_offsets(tps) if tps else {}
        by_topic: dict[str, dict[str, int]] = {}
        for group, topics in counted.items():
            done = {tp: meta.offset for tp, meta in committed[group].items()
                    if meta is not None and meta.offset >= 0}
            by_topic[group] = {topic: 0 for topic in topics}
            for tp in tps:
                if tp.topic in by_topic[group]:
                    by_topic[group][tp.topic] += max(
                        0, ends[tp] - max(done.get(tp, starts[tp]), starts[tp]))
        written: dict[str, int] = dict.fromkeys(measured, 0)
        for tp in tps:
            written[tp.topic] += ends[tp]
        return Lag(by_topic, {topic: len(partitions[topic])
                              for topics in counted.values() for topic in topics}, written)

    async def _committed(self, group: str) -> dict[TopicPartition, Any]:
        """Every offset ``group`` committed. A group's coordinator takes a moment to be
        found the first time (on a new cluster, ``__consumer_offsets`` is created then)."""
        async for attempt in AsyncRetrying(retry=retry_if_exception(_retriable),
                                           wait=wait_fixed(0.2), reraise=True):
            with attempt:
                return dict(await self._admin.list_consumer_group_offsets(group))
        raise AssertionError("unreachable: AsyncRetrying returns or raises")


class LagReader:
    """Reads the lag with one ``LagProbe``, made at the first reading and made anew after a
    failed one (its connections may be what failed). ``read`` raises ``BrokerUnavailable``."""

    def __init__(self, kafka: KafkaSettings, reads: Sequence[Reads],
                 ends_under: str | None = None) -> None:
        self._kafka = kafka
        self.reads = tuple(reads)
        self._ends_under = ends_under
        self._probe: LagProbe | None = None

    async def read(self) -> Lag:
        try:
            if self._probe is None:
                probe = LagProbe(self._kafka, self.reads, self._ends_under)
                self._probe = probe
                await probe.start()
            return await self._probe.read()
        except BrokerUnavailable:
            await self.close()
            raise

    async def close(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None:
            try:
                await probe.stop()
            except Exception as exc:  # closing what failed: nothing more to do about it
                log.debug("stopping the lag probe: %r", exc)


def _retriable(exc: BaseException) -> bool:
    return isinstance(exc, KafkaError) and bool(getattr(exc, "retriable", False))


def _topics_of(reads: Reads, partitions: Mapping[str, Sequence[int]],
               committed: Mapping[TopicPartition, object]) -> set[str]:
    """The existing topics ``reads`` counts."""
    found = set(reads.topics)
    if reads.prefix is not None:
        found |= {tp.topic for tp in committed if tp.topic.startswith(reads.prefix)}
    return found & partitions.keys()


async def offsets_at(kafka: KafkaSettings, topic: str, at_s: float) -> dict[int, int]:
    """For each partition of ``topic``, the first offset written at ``at_s`` or later (the
    end offset where nothing was): where to start reading a time window."""
    reader = consumer(kafka)
    with broker_errors(f"reading {topic}"):
        try:
            await reader.start()
            partitions = await topic_partitions(kafka, topic)
            found = await reader.offsets_for_times({tp: int(at_s * 1000) for tp in partitions})
            ends = await reader.end_offsets(partitions)
        finally:
            await reader.stop()
    return {tp.partition: found[tp].offset if found.get(tp) else ends[tp] for tp in partitions}
