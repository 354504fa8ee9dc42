"""Replay: events re-fed per second (read from the source's topic, their invocations and
pending Results written and acknowledged), beside a raw aiokafka scan of the same range,
and, as a second reference, that scan writing two records per event as a replay must (a
pending Result's and an invocation's worth of bytes, keyed as theirs, acknowledged by
every replica, the first of each batch before the second)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.harness import Measurement
from bench.pipeline import _hook, _produce
from bench.runtime import TRIVIAL, deploy
from bench.stack import Stack
from pipeline.execution import pending
from pipeline.ids import new_event_id, new_resource_id
from pipeline.kafka import topic_partitions
from pipeline.kafka.publisher import BATCH_BYTES
from pipeline.kafka.ranges import FETCH_BYTES
from pipeline.records import Event, Invocation, Position, dumps
from pipeline.settings import KafkaSettings

REPLAY_EVENTS = 50_000
WRITE_BATCH = 1000  # records a replay writes per round trip (``Runner``'s ``batch``)
POLL_S = 0.05


async def replay(stack: Stack) -> list[Measurement]:
    source, function = "bench-replay", "bench-replay-fn"
    kafka = stack.settings.kafka
    topic = f"{kafka.topic_prefix}.events.{source}"
    async with stack.api() as api:
        await _hook(api, source, None)  # nothing subscribed yet: producing runs nothing
        events = [Event(id=new_event_id(), source=source, type="bench", data=b'{"n":1}',
                        datacontenttype="application/json") for _ in range(REPLAY_EVENTS)]
        await _produce(kafka.bootstrap_servers(), topic, events)
        await deploy(api, function, runtime="python", code=TRIVIAL, max_concurrency=8)
        (await api.post("/v1/subscriptions", json={"function": function, "source": source}))\
            .raise_for_status()
        partitions = await topic_partitions(kafka, topic)
        scanned, scan_s = await _scan(kafka.bootstrap_servers(), partitions)
        written_s = await _scan_and_write(kafka, partitions, function)
        response = await api.post("/v1/replays", json={"source": source, "from": "earliest",
                                                       "to": "latest"})
        response.raise_for_status()
        asked = response.json()
        while True:
            listed = (await api.get("/v1/replays")).json()
            (found,) = [r for r in listed if r["id"] == asked["id"]]
            if found["status"] != "running":
                break
            await asyncio.sleep(POLL_S)
    progress = found["progress"]
    # the replay's own clocks: asked (gateway) → its last checkpoint acknowledged (worker)
    took_s = (_at(progress["updated_at"]) - _at(asked["created_at"]))
    ours, raw, written = progress["events_read"] / took_s, scanned / scan_s, scanned / written_s
    params = {"events": REPLAY_EVENTS, "status": found["status"],
              "invocations": progress["invocations"], "seconds": round(took_s, 3),
              "scan_seconds": round(scan_s, 3), "scan_and_write_seconds": round(written_s, 3),
              "function": "warm python, subscribed"}
    return [
        Measurement("replay", ours, "events/s", "raw aiokafka scan of the same range", raw,
                    goal=">= 0.7x", met=found["status"] == "done" and ours >= 0.7 * raw,
                    params=params),
        Measurement("replay_vs_scan_and_write", ours, "events/s",
                    "raw aiokafka scan + 2 acknowledged records per event", written,
                    params=params),
    ]


async def _scan_and_write(kafka: KafkaSettings, partitions: list[TopicPartition],
                          function: str) -> float:
    """The scan written as two records per event to scratch topics shaped as the results
    and invocations topics, through aiokafka's ``send`` with the pipeline's producer
    settings: in batches of the replay's size, the first records of a batch acknowledged
    before the second are sent, each batch acknowledged before the next. No decoding, no
    planning: the I/O of a replay. Its seconds."""
    bootstrap, prefix = kafka.bootstrap_servers(), f"{kafka.topic_prefix}.bench-write"
    results, invocations = f"{prefix}-results", f"{prefix}-invocations"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, kafka.partitions, 1)
                                   for t in (results, invocations)])
    finally:
        await admin.close()
    result, invocation = _record_sizes(function)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                enable_idempotence=True, linger_ms=0,
                                max_batch_size=BATCH_BYTES, max_request_size=kafka.message_bytes)
    await producer.start()

    held: list[ConsumerRecord[bytes, bytes]] = []

    async def write(messages: list[ConsumerRecord[bytes, bytes]], last: bool = False) -> None:
        held.extend(messages)
        if len(held) < WRITE_BATCH and not last:
            return  # as many records per round trip as a replay writes
        # keyed by the event id (a uuid, as invocation ids are)
        sent = [await producer.send(results, result, key=m.key) for m in held]
        await asyncio.gather(*sent)
        sent = [await producer.send(invocations, invocation, key=function.encode())
                for _ in held]
        await asyncio.gather(*sent)
        held.clear()

    try:
        start = time.perf_counter()
        await _scan(bootstrap, partitions, write)
        await write([], last=True)
        took = time.perf_counter() - start
    finally:
        await producer.stop()
    return took


def _record_sizes(function: str) -> tuple[bytes, bytes]:
    """A pending Result's and an invocation's worth of bytes, as a replay writes them for one
    of the bench's events."""
    event = Event(id=new_event_id(), source="bench-replay", type="bench", data=b'{"n":1}',
                  datacontenttype="application/json")
    invocation = Invocation(id=str(uuid.uuid4()), function=function, event=event,
                            source="bench-replay", replay_id=new_resource_id("rp"),
                            event_position=Position(0, 0))
    return (b"r" * len(dumps(pending(invocation).to_dict())),
            b"i" * len(dumps(invocation.to_dict())))


def _at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


async def _scan(bootstrap: str, partitions: list[TopicPartition],
                write: Callable[[list[ConsumerRecord[bytes, bytes]]], Awaitable[None]] | None = None
                ) -> tuple[int, float]:
    """Read the whole topic (records counted, not decoded) with the replay's fetch sizes;
    ``write``: what to do with each batch."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                fetch_max_bytes=FETCH_BYTES,
                                max_partition_fetch_bytes=FETCH_BYTES // 4)
    await consumer.start()
    try:
        start = time.perf_counter()
        consumer.assign(partitions)
        firsts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, firsts[tp])
        count, pending = 0, {tp for tp in partitions if firsts[tp] < ends[tp]}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000)
            count += sum(len(messages) for messages in batches.values())
            if write is not None and batches:
                await write([m for messages in batches.values() for m in messages])
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        took = time.perf_counter() - start
    finally:
        await consumer.stop()
    expected = sum(ends[tp] - firsts[tp] for tp in partitions)
    if count != expected:
        raise RuntimeError(f"the scan read {count} records of {expected}")
    return count, took
