"""Every kind of write at once, on the real broker: the executor's Results one by one, the
starter's pending Results in bulk, invocations, all within the publish timeout.

aiokafka queues a bulk batch only when its partition has none queued; while the executor
sent its Results one record at a time to the same partitions, there always was one, and
every bulk write of the starter timed out (20,000 events: 21,009 retried writes)."""

from __future__ import annotations

import asyncio
import uuid

from pipeline.kafka import Publisher, ensure_topics
from pipeline.records import Result, Status
from pipeline.settings import KafkaSettings
from pipeline.topics import Topics
from pipeline.writer import Writer
from tests.integration.conftest import KafkaContainer
from tests.integration.test_publisher_bulk import read_all

FINALS = 4000
BULKS = 200
PER_BULK = 50


async def test_bulk_and_single_writes_together_all_land_in_time(kafka: KafkaContainer) -> None:
    settings = KafkaSettings(bootstrap=kafka.bootstrap, topic_prefix=f"w{uuid.uuid4().hex[:8]}",
                             publish_timeout_s=2.0)
    topics = Topics(settings)
    await ensure_topics(settings, topics.core())
    publisher = Publisher(settings)
    await publisher.start()
    writer = Writer(publisher, topics)
    finals = [Result(invocation_id=f"inv-{n}", event_id=f"ev-{n}", function="f",
                     status=Status.SUCCEEDED) for n in range(FINALS)]
    try:
        async def bulk(n: int) -> None:
            await writer.write_pending([(f"p-{n}-{i}", b"{}") for i in range(PER_BULK)])
            await writer.enqueue_many([("f", b"{}") for _ in range(PER_BULK)])

        outcomes = await asyncio.gather(*(writer.write(r) for r in finals),
                                        *(bulk(n) for n in range(BULKS)),
                                        return_exceptions=True)
    finally:
        await writer.close()
        await publisher.stop()

    failed = [o for o in outcomes if isinstance(o, BaseException)]
    assert not failed, f"{len(failed)} writes failed, the first: {failed[0]!r}"
    assert len(await read_all(settings, topics.results)) == FINALS + BULKS * PER_BULK
    assert len(await read_all(settings, topics.invocations)) == BULKS * PER_BULK
