"""Batched subscriptions: events → results when a trivial warm function takes them 100 at
a time, beside the raw aiokafka relay of the same events in the same run."""

from __future__ import annotations

import time

from bench.harness import Measurement
from bench.pipeline import ResultWatch, _produce, _relay
from bench.runtime import TRIVIAL, deploy
from bench.stack import Stack
from pipeline.ids import new_event_id
from pipeline.kafka import ensure_topics
from pipeline.records import Event
from pipeline.topics import TopicSpec

EVENTS = 20_000
BATCH_SIZE = 100
WINDOW_MS = 200


async def batched(stack: Stack) -> list[Measurement]:
    source, function = "bench-batched", "bench-batched-fn"
    async with stack.api() as api:
        await deploy(api, function, runtime="python", code=TRIVIAL, max_concurrency=8,
                     min_warm=8)
        (await api.post("/v1/subscriptions", json={
            "function": function, "source": source, "batch_size": BATCH_SIZE,
            "batch_window_ms": WINDOW_MS})).raise_for_status()
    kafka = stack.settings.kafka
    topic = f"{kafka.topic_prefix}.events.{source}"
    events = [Event(id=new_event_id(), source=source, type="bench", data=b'{"n":1}',
                    datacontenttype="application/json") for _ in range(EVENTS)]
    async with ResultWatch(stack) as watch:
        start = time.perf_counter()
        await _produce(kafka.bootstrap_servers(), topic, events)
        await watch.wait_for({e.id for e in events}, timeout_s=300)
        done = [watch.arrived[e.id] for e in events if e.id in watch.arrived]
        ours = len(done) / (max(done, default=start + 1) - start)
    sink = TopicSpec(f"{kafka.topic_prefix}.bench-relay-batched", kafka.partitions)
    await ensure_topics(kafka, [sink])
    relay = await _relay(kafka.bootstrap_servers(), topic, sink.name, events)
    return [Measurement(
        "events_to_results_batched", ours, "events/s", "raw aiokafka consume → produce relay",
        relay, goal=">= 20000 events/s and >= 0.5x",
        met=ours >= 20_000 and ours >= 0.5 * relay,
        params={"events": len(events), "completed": len(done), "batch_size": BATCH_SIZE,
                "batch_window_ms": WINDOW_MS,
                "function": "warm python, returns its input (the batch)"},
    )]
