"""The autoscaler's lag reading (``pipeline.autoscale.lag``, ``pipeline.kafka.admin``) on a
real broker: records written, part of them committed in the worker's consumer groups, and
the lag reported is what is left, group by group."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from pipeline.autoscale.lag import WorkerLag, worker_groups
from pipeline.errors import BrokerUnavailable
from pipeline.kafka.admin import LagProbe, ensure_topics
from pipeline.settings import KafkaSettings
from pipeline.topics import Topics
from tests.integration.conftest import KafkaContainer, free_port

pytestmark = pytest.mark.timeout(120)


async def produce(settings: KafkaSettings, topic: str, counts: dict[int, int]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers())
    await producer.start()
    try:
        for partition, count in counts.items():
            for n in range(count):
                await producer.send_and_wait(topic, str(n).encode(), key=f"k{n}".encode(),
                                            partition=partition)
    finally:
        await producer.stop()


async def commit(settings: KafkaSettings, group: str, offsets: dict[tuple[str, int], int]
                 ) -> None:
    member = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers(), group_id=group,
                              enable_auto_commit=False)
    await member.start()
    try:
        tps = {TopicPartition(*p): offset for p, offset in offsets.items()}
        member.assign(list(tps))
        await member.commit(tps)
    finally:
        await member.stop()


async def test_the_lag_is_what_the_worker_groups_have_not_committed(
    kafka: KafkaContainer,
) -> None:
    settings = KafkaSettings(bootstrap=kafka.bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:8]}",
                             partitions=2)
    topics = Topics(settings)
    followed, unfollowed = topics.event_topic("a"), topics.event_topic("b")
    await ensure_topics(settings, [s for s in topics.core()
                                   if s.name in (topics.invocations, topics.results)]
                        + [followed, unfollowed])
    await produce(settings, topics.invocations, {0: 10, 1: 6})
    await produce(settings, topics.results, {0: 3, 1: 2})
    await produce(settings, followed.name, {0: 7})
    await produce(settings, unfollowed.name, {0: 9})
    starter, executor, callbacks = (g.group for g in worker_groups(topics))
    await commit(settings, executor, {(topics.invocations, 0): 4})  # partition 1: never
    await commit(settings, starter, {(followed.name, 0): 3})

    lag = WorkerLag(settings)
    try:
        reading = await lag.read()
        assert reading.partitions == 2
        # executor: 10-4 + 6 (never committed: from the log start); callbacks: 3 + 2 (none
        # committed); starter: 7-3 in the topic it follows, the other one not counted
        assert reading.lag == 6 + 6 + 5 + 4

        await commit(settings, executor, {(topics.invocations, 0): 10,
                                          (topics.invocations, 1): 6})
        assert (await lag.read()).lag == 5 + 4
    finally:
        await lag.close()

    probe = LagProbe(settings, worker_groups(topics), ends_under=topics.events_prefix)
    await probe.start()
    try:
        found = await probe.read()
    finally:
        await probe.stop()
    assert dict(found.by_group) == {starter: 4, executor: 0, callbacks: 5}
    assert found.by_topic[starter] == {followed.name: 4}  # per topic, what the metrics show
    # what was ever written: every topic counted, and every event topic, followed or not
    assert dict(found.ends) == {topics.invocations: 16, topics.results: 5, followed.name: 7,
                                unfollowed.name: 9}
    assert (starter, executor, callbacks) == (f"{topics.prefix}-starter",
                                              f"{topics.prefix}-executor",
                                              f"{topics.prefix}-callbacks")


async def test_no_invocations_topic_yet_is_no_lag_and_no_partition_cap(
    kafka: KafkaContainer,
) -> None:
    settings = KafkaSettings(bootstrap=kafka.bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:8]}")
    lag = WorkerLag(settings)
    try:
        reading = await lag.read()
    finally:
        await lag.close()
    assert (reading.lag, reading.partitions) == (0, None)


async def test_an_unreachable_broker_is_broker_unavailable(kafka: KafkaContainer) -> None:
    settings = KafkaSettings(bootstrap=f"127.0.0.1:{free_port()}", publish_timeout_s=1)
    lag = WorkerLag(settings)
    try:
        with pytest.raises(BrokerUnavailable):
            await lag.read()
    finally:
        await lag.close()
