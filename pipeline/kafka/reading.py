"""Reading a topic outside any consumer group: a bounded scan, batch by batch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from pipeline.errors import BrokerUnavailable
from pipeline.kafka.errors import broker_errors
from pipeline.settings import KafkaSettings


def consumer(kafka: KafkaSettings, **options: object) -> AIOKafkaConsumer:
    """A consumer outside any group that reads from the beginning and takes the largest
    record the size budget allows (``options`` may raise the fetch sizes)."""
    return AIOKafkaConsumer(**{"bootstrap_servers": kafka.bootstrap_servers(), "group_id": None,
                               "enable_auto_commit": False, "auto_offset_reset": "earliest",
                               "max_partition_fetch_bytes": kafka.message_bytes + 65536,
                               **options})


Record = tuple[int, int, bytes | None, bytes | None]  # partition, offset, key, value


async def scan(kafka: KafkaSettings, topic: str, start: Mapping[int, int],
               partitions: Iterable[int] | None = None) -> AsyncIterator[Record]:
    """Every record of ``topic`` (of ``partitions``, by default all) from the ``start``
    offset of each partition (the beginning where none is given) up to the end it had when
    the scan began, batch by batch: memory does not grow with the topic."""
    reader = consumer(kafka)
    with broker_errors(f"reading {topic}"):
        try:
            await reader.start()
            found = await topic_partitions(kafka, topic)
            wanted = found if partitions is None else [
                tp for tp in found if tp.partition in set(partitions)]
            reader.assign(wanted)
            ends = await reader.end_offsets(wanted)
            for tp in wanted:
                if tp.partition in start:
                    reader.seek(tp, start[tp.partition])
                else:
                    await reader.seek_to_beginning(tp)
            pending = {tp for tp in wanted if await reader.position(tp) < ends[tp]}
            while pending:
                batches = await reader.getmany(*pending, timeout_ms=1000)
                for tp, messages in batches.items():
                    for m in messages:
                        if m.offset < ends[tp]:
                            yield tp.partition, m.offset, m.key, m.value
                pending = {tp for tp in pending if await reader.position(tp) < ends[tp]}
        finally:
            await reader.stop()


async def read_from(kafka: KafkaSettings, topic: str, start: Mapping[int, int]) -> list[Record]:
    """``scan`` into a list, for small topics and tests."""
    return [record async for record in scan(kafka, topic, start)]


async def topic_partitions(kafka: KafkaSettings, topic: str) -> list[TopicPartition]:
    """The topic's partitions; a topic created a moment ago may take a moment to appear."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers())
    with broker_errors(f"describing {topic}"):
        await admin.start()
        try:
            for _ in range(50):
                (described,) = await admin.describe_topics([topic])
                ids = sorted(p["partition"] for p in described["partitions"])
                if described["error_code"] == 0 and ids:
                    return [TopicPartition(topic, p) for p in ids]
                await asyncio.sleep(0.2)
        finally:
            await admin.close()
    raise BrokerUnavailable(f"topic {topic} does not exist")
