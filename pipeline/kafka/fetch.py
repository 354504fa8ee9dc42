"""Reading single records by their position, with one long-lived consumer."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition

from pipeline.kafka.errors import broker_errors
from pipeline.kafka.reading import Record, consumer, topic_partitions
from pipeline.settings import KafkaSettings


class Fetcher:
    """Reads the record at a position, or the first one after it (compaction may have
    removed it). Requests take turns on one consumer, outside any group; each is bounded
    by ``publish_timeout_s``, after which ``BrokerUnavailable`` is raised."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._kafka = kafka
        self._consumer = consumer(kafka, fetch_max_wait_ms=50)
        self._lock = asyncio.Lock()
        self._partitions: dict[str, list[TopicPartition]] = {}

    async def start(self) -> None:
        with broker_errors("starting a reader"):
            await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    async def ends(self, topic: str) -> dict[int, int]:
        """The end offset of each partition of ``topic`` (whose partitions are asked for
        once)."""
        if topic not in self._partitions:
            self._partitions[topic] = await topic_partitions(self._kafka, topic)
        async with self._lock:
            with broker_errors(f"reading the end offsets of {topic}"):
                async with asyncio.timeout(self._kafka.publish_timeout_s):
                    ends = await self._consumer.end_offsets(self._partitions[topic])
        return {tp.partition: end for tp, end in ends.items()}

    async def fetch(self, topic: str, partition: int, offset: int) -> Record | None:
        """The record at ``offset`` of ``topic[partition]`` or the next one; None when
        there is none up to the end."""
        tp = TopicPartition(topic, partition)
        async with self._lock:
            with broker_errors(f"reading {topic}[{partition}]@{offset}"):
                async with asyncio.timeout(self._kafka.publish_timeout_s):
                    self._consumer.assign([tp])
                    end = (await self._consumer.end_offsets([tp]))[tp]
                    if offset >= end:
                        return None
                    self._consumer.seek(tp, offset)
                    while True:
                        batch = await self._consumer.getmany(tp, timeout_ms=200, max_records=1)
                        for m in batch.get(tp, ()):
                            if m.offset >= offset:
                                return partition, m.offset, m.key, m.value
                        if await self._consumer.position(tp) >= end:
                            return None
