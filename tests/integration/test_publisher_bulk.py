"""``Publisher.publish_bulk`` on the real broker: records land where ``send`` would put them,
in order within each partition, each with its headers, a record larger than a batch too; a
record larger than the topic takes is refused as ``PayloadTooLarge``."""

from __future__ import annotations

import uuid
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.errors import PayloadTooLarge
from pipeline.kafka import Publisher, ensure_topics, partition_of
from pipeline.kafka.publisher import BATCH_BYTES
from pipeline.settings import KafkaSettings
from pipeline.topics import TopicSpec
from tests.integration.conftest import KafkaContainer

PARTITIONS = 4
HEADERS = [("faasflow-status", b"pending")]


async def read_all(settings: KafkaSettings, topic: str
                   ) -> list[tuple[int, str, bytes, list[tuple[str, bytes]]]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers(),
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                max_partition_fetch_bytes=settings.message_bytes + 65536)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        found = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for tp, messages in (await consumer.getmany(timeout_ms=1000)).items():
                found.extend((tp.partition, m.key.decode(), m.value, list(m.headers))
                             for m in messages if m.key is not None and m.value is not None)
        return found
    finally:
        await consumer.stop()


async def test_bulk_records_land_in_their_keys_partitions_in_order(
        kafka: KafkaContainer) -> None:
    settings = KafkaSettings(bootstrap=kafka.bootstrap)
    topic = f"b{uuid.uuid4().hex[:10]}.invocations"
    await ensure_topics(settings, [TopicSpec(topic, PARTITIONS)])
    # several full batches in one partition (one key), and many keys over all of them
    records = [("one-function", b"%06d" % n + b"x" * 500, HEADERS) for n in range(5000)]
    records += [(f"key-{n % 97}", b"%06d" % n, ()) for n in range(3000)]
    records.insert(100, ("one-function", b"L" * (BATCH_BYTES + 1000), HEADERS))  # goes alone
    publisher = Publisher(settings)
    await publisher.start()
    try:
        await publisher.publish_bulk(topic, records)
    finally:
        await publisher.stop()

    found = await read_all(settings, topic)
    assert len(found) == len(records)
    assert sorted(len(headers) for *_, headers in found) == sorted(
        len(headers) for *_, headers in records)
    assert all(headers == HEADERS for *_, headers in found if headers)
    by_key: dict[str, list[bytes]] = defaultdict(list)
    for partition, key, value, _ in found:
        assert partition == partition_of(key, PARTITIONS)
        by_key[key].append(value)
    sent: dict[str, list[bytes]] = defaultdict(list)
    for key, value, _ in records:
        sent[key].append(value)
    assert by_key == sent


async def test_a_record_larger_than_the_topic_takes_is_refused(kafka: KafkaContainer) -> None:
    settings = KafkaSettings(bootstrap=kafka.bootstrap)
    topic = f"b{uuid.uuid4().hex[:10]}.invocations"
    await ensure_topics(settings, [TopicSpec(topic, PARTITIONS, {"max.message.bytes": "100000"})])
    publisher = Publisher(settings)
    await publisher.start()
    try:
        with pytest.raises(PayloadTooLarge):
            await publisher.publish_bulk(topic, [("k", b"x" * 10, ()), ("k", b"x" * 200_000, ())])
    finally:
        await publisher.stop()
