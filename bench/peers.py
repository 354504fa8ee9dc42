"""The peers: the agent shape faasflow's worker has, written in plain aiokafka, in Faust and
on Quix Streams, against the same events on the bench stack's broker, and the floor of the
whole flow for a warm function (each event posted to a warm container) in aiokafka and in
Quix Streams. Where Faust itself is the floor, this shows it.

Every shape consumes the same N events (a fresh topic, produced once) with a consumer group
of its own and writes one result record per event (acks=all) to a topic of its own; each
times itself from the first record in its hands to the last result acknowledged by the
broker. The aiokafka shapes run here, in the bench's event loop; Faust and Quix Streams run
in a process of their own (``bench.peer_apps``), as their workers are meant to run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.harness import Measurement
from bench.pipeline import _produce
from bench.runtime import CONCURRENCY, direct_rate, warm_calls
from bench.stack import Stack
from pipeline.ids import new_event_id
from pipeline.kafka import ensure_topics
from pipeline.records import Event, dumps
from pipeline.settings import KafkaSettings
from pipeline.topics import TopicSpec

AGENT_EVENTS = 20_000
FLOOR_EVENTS = 5_000
WARM_UP_CALLS = 200
APP_TIMEOUT_S = 300.0
REPORT = "peer-report "  # the line a peer app prints once it is done: REPORT + JSON
OUT = Path(__file__).parent / "out" / "peers"
# a directory: the Faust and Quix Streams apps run under `py-spy record` and leave their
# profiles (raw, collapsed stacks) there; the figures are then slower than without
PROFILE_DIR = os.environ.get("FAASFLOW_BENCH_PEERS_PROFILE")

Transform = Callable[[list[dict[str, Any]]], Awaitable[list[dict[str, Any]]]]


def result_of(event: dict[str, Any]) -> dict[str, Any]:
    """The work of every shape: the result record of one decoded event."""
    return {"event_id": event["id"], "status": "succeeded", "output": event.get("data")}


def number_of(event: dict[str, Any]) -> int:
    """What the warm function is called with (``direct_call``'s ``n``)."""
    return int(event["data"]["n"])


async def peers(stack: Stack) -> list[Measurement]:
    kafka = stack.settings.kafka
    source = await _topic(kafka, "in")
    await _produce(kafka.bootstrap_servers(), source, _events(source, AGENT_EVENTS))
    aiokafka = await _aiokafka_agent(kafka, source, AGENT_EVENTS, _results)
    rates = {shape: await _app(kafka, shape, source, AGENT_EVENTS)
             for shape in ("faust_tasks", "faust_async_for", "quixstreams")}

    floor_source = await _topic(kafka, "floor")
    await _produce(kafka.bootstrap_servers(), floor_source, _events(floor_source, FLOOR_EVENTS))
    direct, floor = await _aiokafka_floor(stack, floor_source)
    quix_floor = await _app(kafka, "quixstreams_warm", floor_source, FLOOR_EVENTS)

    agent = "plain aiokafka agent (getmany, decode, produce acks=all, commit per batch)"
    params = {"events": AGENT_EVENTS, "partitions": kafka.partitions}
    floor_params = {"events": FLOOR_EVENTS, "function": "warm python, returns its input"}
    return [
        Measurement("agent_aiokafka", aiokafka, "events/s", params=params),
        Measurement("agent_faust_tasks", rates["faust_tasks"], "events/s", agent, aiokafka,
                    params={**params, "shape": "a task per record, ack after its "
                            "acknowledged produce, in-flight budget (the worker's shape)"}),
        Measurement("agent_faust_async_for", rates["faust_async_for"], "events/s", agent,
                    aiokafka, params={**params, "shape": "async for value in stream: "
                                      "await topic.send(...)"}),
        Measurement("agent_quixstreams", rates["quixstreams"], "events/s", agent, aiokafka,
                    params={**params, "shape": "dataframe.apply(...).to_topic(...)"}),
        Measurement("floor_warm_aiokafka", floor, "events/s",
                    f"direct HTTP to the warm containers, {CONCURRENCY} in flight", direct,
                    params={**floor_params, "in_flight": CONCURRENCY}),
        Measurement("floor_warm_quixstreams", quix_floor, "events/s",
                    f"aiokafka, {CONCURRENCY} calls in flight", floor,
                    params={**floor_params, "in_flight": 1,
                            "why": "Quix Streams hands over one message at a time and waits "
                                   "for its (synchronous) processing"}),
    ]


async def _topic(kafka: KafkaSettings, role: str) -> str:
    spec = TopicSpec(f"{kafka.topic_prefix}.bench-peers-{role}-{new_event_id()}",
                     kafka.partitions)
    await ensure_topics(kafka, [spec])
    return spec.name


def _events(source: str, count: int) -> list[Event]:
    return [Event(id=new_event_id(), source=source, type="bench", data=dumps({"n": n}),
                  datacontenttype="application/json") for n in range(count)]


async def _results(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [result_of(event) for event in events]


async def _aiokafka_agent(kafka: KafkaSettings, source: str, count: int,
                          transform: Transform) -> float:
    """getmany; decode each record and ``transform`` the batch; produce one result each
    (acks=all); commit once the batch's results are acknowledged. Events per second from
    the first batch in hand to the last commit."""
    bootstrap = kafka.bootstrap_servers()
    sink = await _topic(kafka, "out")
    consumer = AIOKafkaConsumer(source, bootstrap_servers=bootstrap,
                                group_id=f"bench-peers-{new_event_id()}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await consumer.start()
    await producer.start()
    try:
        done, first = 0, None
        while done < count:
            batches = await consumer.getmany(timeout_ms=1000)
            records = [m for ms_ in batches.values() for m in ms_]
            if not records:
                continue
            first = first or time.perf_counter()
            results = await transform([json.loads(m.value) for m in records])
            sent = [await producer.send(sink, dumps(r), key=m.key)
                    for r, m in zip(results, records, strict=True)]
            await asyncio.gather(*sent)
            await consumer.commit()
            done += len(records)
        assert first is not None
        return done / (time.perf_counter() - first)
    finally:
        await consumer.stop()
        await producer.stop()


async def _aiokafka_floor(stack: Stack, source: str) -> tuple[float, float]:
    """Direct calls to the warm pool, and the aiokafka agent calling it for each event,
    both with up to ``CONCURRENCY`` calls in flight: events (calls) per second."""
    direct = await direct_rate(stack, FLOOR_EVENTS, CONCURRENCY)
    async with warm_calls(stack, CONCURRENCY, warm_up=WARM_UP_CALLS) as call:

        async def call_each(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
            await asyncio.gather(*(call(number_of(event)) for event in events))
            return [result_of(event) for event in events]

        floor = await _aiokafka_agent(stack.settings.kafka, source, FLOOR_EVENTS, call_each)
    return direct, floor


async def _app(kafka: KafkaSettings, shape: str, source: str, count: int) -> float:
    """Run ``bench.peer_apps`` for ``shape`` until it reports; its events per second."""
    OUT.mkdir(parents=True, exist_ok=True)
    sink = await _topic(kafka, "out")
    command: Sequence[str] = [sys.executable, "-m", "bench.peer_apps", shape, source, sink,
                              str(count)]
    if PROFILE_DIR:
        command = [str(Path(sys.executable).with_name("py-spy")), "record", "--threads",
                   "-f", "raw", "-o", f"{PROFILE_DIR}/{shape}.txt", "--", *command]
    log = OUT / f"{shape}.log"
    with log.open("wb") as stderr:
        app = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE,
                                                   stderr=stderr)
        try:
            report = await asyncio.wait_for(_report(app), APP_TIMEOUT_S)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                app.send_signal(signal.SIGINT)
            raise
        finally:
            await _ended(app)
    if report is None:
        raise RuntimeError(f"{shape} stopped without a report; its log, {log}:\n"
                           f"{log.read_text()[-3000:]}")
    return float(report["events"]) / float(report["seconds"])


async def _report(app: asyncio.subprocess.Process) -> dict[str, Any] | None:
    assert app.stdout is not None
    async for line in app.stdout:
        if line.startswith(REPORT.encode()):
            return dict(json.loads(line[len(REPORT):]))
    return None


async def _ended(app: asyncio.subprocess.Process) -> None:
    """A peer app stops by itself once it has reported (or was told to)."""
    try:
        await asyncio.wait_for(app.wait(), 30)
    except TimeoutError:
        app.kill()
        await app.wait()
