"""Replay: events re-fed per second (read from the source's topic, their invocations and
pending Results written and acknowledged), beside a raw aiokafka scan of the same range."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.harness import Measurement
from bench.pipeline import _hook, _produce
from bench.runtime import TRIVIAL, deploy
from bench.stack import Stack
from pipeline.ids import new_event_id
from pipeline.kafka import topic_partitions
from pipeline.kafka.ranges import FETCH_BYTES
from pipeline.records import Event

REPLAY_EVENTS = 50_000
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
    ours, raw = progress["events_read"] / took_s, scanned / scan_s
    return [Measurement(
        "replay", ours, "events/s", "raw aiokafka scan of the same range", raw,
        goal=">= 0.7x", met=found["status"] == "done" and ours >= 0.7 * raw,
        params={"events": REPLAY_EVENTS, "status": found["status"],
                "invocations": progress["invocations"], "seconds": round(took_s, 3),
                "scan_seconds": round(scan_s, 3), "function": "warm python, subscribed"},
    )]


def _at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


async def _scan(bootstrap: str, partitions: list[TopicPartition]) -> tuple[int, float]:
    """Read the whole topic (records counted, not decoded) with the replay's fetch sizes."""
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
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        took = time.perf_counter() - start
    finally:
        await consumer.stop()
    expected = sum(ends[tp] - firsts[tp] for tp in partitions)
    if count != expected:
        raise RuntimeError(f"the scan read {count} records of {expected}")
    return count, took
