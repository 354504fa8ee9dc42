"""The starter's consumer group member (``pipeline.kafka.group``) on a real broker: topics
followed at run time are read, a restart reads again from the first record not done, and a
new group takes over the offsets of the group that read the topics before it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from pipeline.kafka import GroupProbe, ensure_topics
from pipeline.kafka.group import Delivery, GroupReader, Partition
from pipeline.settings import KafkaSettings
from pipeline.topics import TopicSpec
from tests.integration.conftest import KafkaContainer

WAIT_S = 60


async def nothing_revoked(partitions: set[Partition]) -> None:
    pass


def reader(settings: KafkaSettings, group: str, inherit_from: str | None = None) -> GroupReader:
    return GroupReader(settings, group, fetch_max_wait_ms=100, max_poll_interval_s=60,
                       on_revoked=nothing_revoked, inherit_from=inherit_from)


async def topic_with(settings: KafkaSettings, records: int) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [TopicSpec(name, 1)])
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers())
    await producer.start()
    try:
        for n in range(records):
            await producer.send_and_wait(name, str(n).encode())
    finally:
        await producer.stop()
    return name


async def take(deliveries: AsyncIterator[Delivery], count: int) -> list[Delivery]:
    async def collect() -> list[Delivery]:
        return [await anext(deliveries) for _ in range(count)]

    return await asyncio.wait_for(collect(), WAIT_S)


async def committed(settings: KafkaSettings, group: str, topic: str) -> int | None:
    probe = GroupProbe(settings, group)
    await probe.start()
    try:
        _, found = await probe.offsets([(topic, 0)])
    finally:
        await probe.stop()
    return found.get((topic, 0))


async def test_a_topic_followed_later_is_read_too(kafka: KafkaContainer) -> None:
    settings = KafkaSettings(bootstrap=kafka.bootstrap)
    first = await topic_with(settings, 2)
    member = reader(settings, f"g-{uuid.uuid4().hex[:8]}")
    await member.start()
    try:
        await member.follow([first])
        deliveries = member.deliveries()
        got = await take(deliveries, 2)
        assert {d.value for d in got} == {b"0", b"1"}
        for delivery in got:  # done: not read again after the coming rebalance
            member.done(delivery)
        later = await topic_with(settings, 3)
        await member.follow([later])
        got = await take(deliveries, 3)
        assert [(d.topic, d.value) for d in got] == [(later, b"0"), (later, b"1"), (later, b"2")]
    finally:
        await member.stop()


async def test_a_restart_reads_again_from_the_first_record_not_done(
    kafka: KafkaContainer,
) -> None:
    settings = KafkaSettings(bootstrap=kafka.bootstrap)
    topic = await topic_with(settings, 6)
    group = f"g-{uuid.uuid4().hex[:8]}"
    member = reader(settings, group)
    await member.start()
    try:
        await member.follow([topic])
        got = await take(member.deliveries(), 6)
        for delivery in got:
            if delivery.offset not in (3, 5):  # 3 and 5 still running when it stops
                member.done(delivery)
    finally:
        await member.stop()
    assert await committed(settings, group, topic) == 3

    again = reader(settings, group)
    await again.start()
    try:
        await again.follow([topic])
        assert [d.offset for d in await take(again.deliveries(), 3)] == [3, 4, 5]
    finally:
        await again.stop()


async def test_a_new_group_starts_where_the_group_before_it_committed(
    kafka: KafkaContainer,
) -> None:
    """An upgrade moved the starter from Faust's group to its own: events the old one
    had done must not run again."""
    settings = KafkaSettings(bootstrap=kafka.bootstrap)
    topic = await topic_with(settings, 5)
    old, new = f"old-{uuid.uuid4().hex[:8]}", f"new-{uuid.uuid4().hex[:8]}"
    before = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id=old,
                              enable_auto_commit=False)
    await before.start()
    try:
        before.assign([TopicPartition(topic, 0)])
        await before.commit({TopicPartition(topic, 0): 4})
    finally:
        await before.stop()

    member = reader(settings, new, inherit_from=old)
    await member.start()
    try:
        await member.follow([topic])
        (delivery,) = await take(member.deliveries(), 1)
        assert (delivery.offset, delivery.value) == (4, b"4")
    finally:
        await member.stop()
    assert await committed(settings, new, topic) == 4

    untouched = reader(settings, f"g-{uuid.uuid4().hex[:8]}", inherit_from=old + "-none")
    await untouched.start()
    try:  # no group before it: from the beginning
        await untouched.follow([topic])
        assert [d.offset for d in await take(untouched.deliveries(), 5)] == [0, 1, 2, 3, 4]
    finally:
        await untouched.stop()


async def test_a_consumer_whose_coordination_dies_is_replaced_and_nothing_is_lost(
    kafka: KafkaContainer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """aiokafka's group coordination dies for good when the subscription changes just as
    a rebalance ends (its heartbeat task is cancelled before it ran). ``follow`` waits that
    moment out; here it does not, and the member must replace its consumer."""
    settings = KafkaSettings(bootstrap=kafka.bootstrap)
    first, later = await topic_with(settings, 3), await topic_with(settings, 3)
    member = reader(settings, f"g-{uuid.uuid4().hex[:8]}", inherit_from="nobody")
    inherit = member._inherit

    async def subscription_changes_within(group: str, assigned: set[TopicPartition]) -> None:
        if later not in member._topics:
            await member.follow([later])  # while the rebalance ends
        await inherit(group, assigned)

    async def no_wait() -> None:
        pass

    monkeypatch.setattr(member, "_steady_group", no_wait)
    monkeypatch.setattr(member, "_inherit", subscription_changes_within)
    await member.start()
    try:
        await member.follow([first])
        got = await take(member.deliveries(), 6)
        assert sorted((d.topic, d.offset) for d in got) == sorted(
            (topic, n) for topic in (first, later) for n in range(3))
    finally:
        await member.stop()


async def test_a_member_whose_caller_holds_back_stays_in_the_group(
    kafka: KafkaContainer,
) -> None:
    """The executor stops taking records while its in-flight budget is full of slow
    invocations; aiokafka leaves the group when a member has not polled for
    ``max_poll_interval``, and the rebalance would hand the records in flight out again."""
    settings = KafkaSettings(bootstrap=kafka.bootstrap)
    topic = await topic_with(settings, 3)
    revoked: list[set[Partition]] = []

    async def note_revoked(partitions: set[Partition]) -> None:
        revoked.append(partitions)

    member = GroupReader(settings, f"g-{uuid.uuid4().hex[:8]}", fetch_max_wait_ms=100,
                         max_poll_interval_s=4, on_revoked=note_revoked)
    await member.start()
    try:
        await member.follow([topic])
        deliveries = member.deliveries()
        (first,) = await take(deliveries, 1)
        await asyncio.sleep(10)  # the caller is busy: no record taken for 2.5 intervals

        rest = await take(deliveries, 2)
    finally:
        await member.stop()
    assert [d.offset for d in (first, *rest)] == [0, 1, 2]
    assert revoked == [], "the member left the group while its caller held back"
