"""Where an event's latency goes, stage by stage: events produced straight to a source's
topic at ``RATE`` a second, each stage timed from the CreateTime of the records the
pipeline writes (the writer stamps a record when it sends it):

    event ─► pending Result ─► invocation ─► final Result
      starter: fetch, match,    the pending     executor: fetch, run,
      send the pending          Result's ack,   send the final
                                send the invocation

Beside them, in the same run on the same broker, the raw hop a stage cannot beat: one
record produced with acks=all and read by a consumer already waiting for it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.harness import Measurement, percentile
from bench.runtime import CONCURRENCY, TRIVIAL, deploy
from bench.stack import Stack
from pipeline.ids import new_event_id
from pipeline.kafka import ensure_topics
from pipeline.records import Event, dumps
from pipeline.topics import TopicSpec

RATE = 200.0
EVENTS = 2_000
WARM_UP = 4 * CONCURRENCY
HOPS = 200
STAGES = ("event → pending", "pending → invocation", "invocation → final", "event → final")


async def stages(stack: Stack) -> list[Measurement]:
    kafka = stack.settings.kafka
    source, function = "bench-stages", "bench-stages-fn"
    async with stack.api() as api:
        await deploy(api, function, runtime="python", code=TRIVIAL, max_concurrency=CONCURRENCY)
        (await api.post("/v1/subscriptions", json={"function": function, "source": source})
         ).raise_for_status()
    topic = f"{kafka.topic_prefix}.events.{source}"
    await ensure_topics(kafka, [TopicSpec(topic, kafka.partitions)])
    times = await _timed(kafka.bootstrap_servers(), kafka.topic_prefix, topic, source)
    raw = await _raw_hops(stack)
    samples = _stages(times)
    base = percentile(raw, 50)
    return [Measurement(
        f"stage: {name}", percentile(xs, 50), "ms p50", "raw acks=all hop, same broker", base,
        params={"rate_per_s": RATE, "events": len(xs), "p90_ms": percentile(xs, 90),
                "p99_ms": percentile(xs, 99), "raw_hop_p99_ms": percentile(raw, 99)},
        samples={name: xs},
    ) for name, xs in samples.items()]


async def _timed(bootstrap: str, prefix: str, topic: str,
                 source: str) -> dict[str, dict[str, float]]:
    """Per event id: the CreateTime (ms) of its event, pending Result, invocation and final
    Result."""
    times: dict[str, dict[str, float]] = {}
    watch = AIOKafkaConsumer(f"{prefix}.results", f"{prefix}.invocations",
                             bootstrap_servers=bootstrap, group_id=None,
                             auto_offset_reset="latest", fetch_max_wait_ms=5)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await watch.start()
    await producer.start()

    async def follow() -> None:
        async for message in watch:
            record = json.loads(message.value)
            if message.topic.endswith(".invocations"):
                times.setdefault(record["event"]["id"], {})["invocation"] = message.timestamp
            elif record["status"] == "pending":
                times.setdefault(record["event_id"], {})["pending"] = message.timestamp
            elif record["status"] in ("succeeded", "failed", "timeout"):
                times.setdefault(record["event_id"], {})["final"] = message.timestamp

    following = asyncio.create_task(follow())
    try:
        await watch.seek_to_end()
        for _ in range(WARM_UP):  # warm containers, as the throughput measure's
            await _send(producer, topic, source)
        await asyncio.sleep(3)
        start = time.perf_counter()
        for n in range(EVENTS):
            ident, stamp = await _send(producer, topic, source)
            times.setdefault(ident, {})["event"] = stamp
            await asyncio.sleep(max(0.0, start + (n + 1) / RATE - time.perf_counter()))
        await asyncio.sleep(5)
    finally:
        following.cancel()
        await producer.stop()
        await watch.stop()
    return times


async def _send(producer: AIOKafkaProducer, topic: str, source: str) -> tuple[str, float]:
    event = Event(id=new_event_id(), source=source, type="bench", data=b'{"n":1}',
                  datacontenttype="application/json")
    sent = await producer.send_and_wait(topic, dumps(event.to_dict()), key=event.id.encode())
    return event.id, sent.timestamp


def _stages(times: dict[str, dict[str, float]]) -> dict[str, list[float]]:
    complete = [t for t in times.values()
                if {"event", "pending", "invocation", "final"} <= t.keys()]
    marks = (("event", "pending"), ("pending", "invocation"), ("invocation", "final"),
             ("event", "final"))
    return {name: [float(t[b] - t[a]) for t in complete]
            for name, (a, b) in zip(STAGES, marks, strict=True)}


async def _raw_hops(stack: Stack) -> Sequence[float]:
    kafka = stack.settings.kafka
    topic = f"{kafka.topic_prefix}.bench-hops"
    await ensure_topics(kafka, [TopicSpec(topic, 1)])
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers(), acks="all")
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka.bootstrap_servers(),
                                group_id=None, auto_offset_reset="latest",
                                fetch_max_wait_ms=stack.settings.worker.fetch_max_wait_ms)
    await producer.start()
    await consumer.start()
    try:
        await consumer.seek_to_end()
        hops = []
        for _ in range(HOPS):
            start = time.perf_counter()
            await producer.send_and_wait(topic, b"hop")
            while not any((await consumer.getmany(timeout_ms=1000)).values()):
                pass
            hops.append((time.perf_counter() - start) * 1000)
            await asyncio.sleep(1 / RATE)
        return hops
    finally:
        await producer.stop()
        await consumer.stop()
