"""Fixed offset ranges of a topic: what a topic holds (first and end offsets, offsets by
time), and reading given ``[first, end)`` ranges batch by batch, with large fetches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping

from aiokafka import TopicPartition

from pipeline.kafka.errors import broker_errors
from pipeline.kafka.reading import Record, consumer, topic_partitions
from pipeline.settings import KafkaSettings

FETCH_BYTES = 16 * 1024 * 1024  # per request; a replay reads a backlog, not a trickle


async def topic_offsets(kafka: KafkaSettings, topic: str, times_ms: Iterable[int]
                        ) -> tuple[dict[int, int], dict[int, int], dict[int, dict[int, int]]]:
    """Each partition's first and end offsets, and for each time the first offset written
    at or after it (the end offset where nothing was)."""
    reader = consumer(kafka)
    with broker_errors(f"reading the offsets of {topic}"):
        try:
            await reader.start()
            partitions = await topic_partitions(kafka, topic)
            async with asyncio.timeout(kafka.publish_timeout_s * 3):
                beginnings = await reader.beginning_offsets(partitions)
                ends = await reader.end_offsets(partitions)
                at: dict[int, dict[int, int]] = {}
                for ms in set(times_ms):
                    found = await reader.offsets_for_times({tp: ms for tp in partitions})
                    at[ms] = {tp.partition: found[tp].offset if found.get(tp) else ends[tp]
                              for tp in partitions}
        finally:
            await reader.stop()
    return ({tp.partition: o for tp, o in beginnings.items()},
            {tp.partition: o for tp, o in ends.items()}, at)


async def read_ranges(kafka: KafkaSettings, topic: str, ranges: Mapping[int, tuple[int, int]],
                      max_records: int) -> AsyncIterator[list[Record]]:
    """The records of ``topic`` in ``[first, end)`` of each partition, in batches of at
    most ``max_records`` (records of one partition stay in order). A range whose records
    are gone (retention) starts at what is left."""
    wanted = {TopicPartition(topic, p): span for p, span in ranges.items() if span[0] < span[1]}
    if not wanted:
        return
    reader = consumer(kafka, fetch_max_bytes=FETCH_BYTES, fetch_max_wait_ms=100,
                      max_partition_fetch_bytes=max(FETCH_BYTES // 4, kafka.message_bytes + 65536))
    with broker_errors(f"reading {topic}"):
        try:
            await reader.start()
            reader.assign(list(wanted))
            for tp, (first, _) in wanted.items():
                reader.seek(tp, first)
            pending = set(wanted)
            while pending:
                batch: list[Record] = []
                # what the fetcher holds, up to max_records (a fetch hands over a few dozen
                # records at a time; a writer wants thousands per round trip)
                while pending and len(batch) < max_records:
                    batches = await reader.getmany(*pending, timeout_ms=0 if batch else 1000,
                                                   max_records=max_records - len(batch))
                    batch.extend((tp.partition, m.offset, m.key, m.value)
                                 for tp, messages in batches.items()
                                 for m in messages if m.offset < wanted[tp][1])
                    for tp in list(pending):
                        if await reader.position(tp) >= wanted[tp][1]:
                            pending.discard(tp)
                    if not batches:
                        break
                if batch:
                    yield batch
        finally:
            await reader.stop()
