"""The event pipeline: webhook ingest, webhook → result latency, events → results
throughput, and the memory an idle gateway and worker hold."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.harness import CpuMeter, Measurement, median, ms, percentile
from bench.runtime import CONCURRENCY, TRIVIAL, deploy, direct_rate
from bench.stack import BASELINE_PORT as NOOP_PORT
from bench.stack import Stack
from pipeline.ids import new_event_id
from pipeline.kafka import ensure_topics
from pipeline.records import Event, dumps
from pipeline.topics import TopicSpec

INGEST_CONNECTIONS = 32
INGEST_SECONDS = 10
INGEST_ROUNDS = 3
RATE = 200  # webhook → result when no throughput was measured first
LATENCY_SECONDS = 10
THROUGHPUT_EVENTS = int(os.environ.get("FAASFLOW_BENCH_EVENTS", "10000"))
WARM_UP = 4 * CONCURRENCY  # events run before a measure, as the direct baseline's calls
LUA = Path(__file__).with_name("post.lua")


async def _hook(api: httpx.AsyncClient, source: str, function: str | None) -> dict[str, Any]:
    """A webhook on ``source``, with ``function`` (warm, trivial) subscribed to it."""
    if function is not None:
        await deploy(api, function, runtime="python", code=TRIVIAL, max_concurrency=CONCURRENCY)
        (await api.post("/v1/subscriptions", json={"function": function, "source": source}))\
            .raise_for_status()
    response = await api.post("/v1/webhooks", json={"name": source, "source": source})
    response.raise_for_status()
    return dict(response.json())


def _wrk(url: str) -> float:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: run compose/setup.sh")
    out = subprocess.run(
        ["wrk", "-t2", f"-c{INGEST_CONNECTIONS}", f"-d{INGEST_SECONDS}s", "-s", str(LUA), url],
        check=True, capture_output=True, text=True,
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{errors.group(1)} requests failed during the run:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"no rate in wrk output:\n{out}")
    return float(match.group(1))


async def ingest(stack: Stack) -> list[Measurement]:
    async with stack.api() as api:
        # nothing subscribed: the measure is the acknowledged write, and a backlog of
        # invocations would load the machine for the measures after it
        hook = await _hook(api, "bench-ingest", None)
    processes = stack.settings.gateway.process_count()
    noop = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.noop_app", str(NOOP_PORT), str(processes))
    try:
        await _wait_http(f"http://127.0.0.1:{NOOP_PORT}/docs")
        ours, base = [], []
        for _ in range(INGEST_ROUNDS):
            ours.append(await asyncio.to_thread(_wrk, f"{stack.url}{hook['url']}"))
            base.append(await asyncio.to_thread(_wrk, f"http://127.0.0.1:{NOOP_PORT}/noop"))
    finally:
        noop.terminate()
        await noop.wait()
    value, baseline = median(ours), median(base)
    return [Measurement(
        "webhook_ingest", value, "req/s",
        f"no-op FastAPI endpoint, served alike: uvloop, httptools, {processes} processes",
        baseline, goal=">= 3000 req/s and >= 0.6x", met=value >= 3000 and value >= 0.6 * baseline,
        params={"connections": INGEST_CONNECTIONS, "seconds": INGEST_SECONDS,
                "rounds": INGEST_ROUNDS, "acks": "all", "processes": processes,
                "load": "wrk", "all_rounds": ours, "baseline_rounds": base},
    )]


async def _wait_http(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(600):  # a minute: a busy machine is slow to import FastAPI
            try:
                if (await client.get(url)).status_code < 500:
                    return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


class ResultWatch:
    """Follows the results topic and notes when each event's final result arrives (each
    event of a batch's, too)."""

    def __init__(self, stack: Stack) -> None:
        self.arrived: dict[str, float] = {}
        self._consumer = AIOKafkaConsumer(
            f"{stack.settings.kafka.topic_prefix}.results",
            bootstrap_servers=stack.settings.kafka.bootstrap_servers(),
            auto_offset_reset="latest", group_id=None, fetch_max_wait_ms=5)
        self._task: asyncio.Task[None] | None = None
        self._arrival = asyncio.Condition()

    async def __aenter__(self) -> ResultWatch:
        await self._consumer.start()
        await self._consumer.seek_to_end()
        self._task = asyncio.create_task(self._follow())
        return self

    async def _follow(self) -> None:
        async for message in self._consumer:
            result = json.loads(message.value)
            if result["status"] in ("succeeded", "failed", "timeout"):
                now = time.perf_counter()
                self.arrived.setdefault(result["event_id"], now)
                for item in result.get("items", ()):
                    self.arrived.setdefault(item["event_id"], now)
                async with self._arrival:
                    self._arrival.notify_all()

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def wait_for(self, event_ids: set[str], timeout_s: float) -> None:
        """Until every one of ``event_ids`` has a result, or the timeout (the caller
        counts what arrived)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s), self._arrival:
                await self._arrival.wait_for(lambda: event_ids <= self.arrived.keys())


async def latency(stack: Stack) -> list[Measurement]:
    """Webhook → final Result, at half the rate ``throughput`` measured (or ``RATE``)."""
    rate = max(10.0, stack.measured.get("events_to_results", 2 * RATE) / 2)
    async with stack.api() as api:
        hook = await _hook(api, "bench-latency", "bench-latency-fn")
    # aiohttp's client: httpx's costs 1.5 ms of CPU a request, which the load generator
    # would take from the platform on a 2-core machine
    async with aiohttp.ClientSession(stack.url) as anonymous:
        sent: dict[str, float] = {}

        async def one(n: int) -> None:
            t0 = time.perf_counter()
            async with anonymous.post(hook["url"], json={"n": n}) as response:
                sent[(await response.json())["event_id"]] = t0

        async with ResultWatch(stack) as watch:
            # as the direct baseline does: every warm container started first
            await asyncio.gather(*(one(-n) for n in range(1, WARM_UP + 1)))
            await watch.wait_for(set(sent), timeout_s=60)
            sent.clear()
            tasks, start = [], time.perf_counter()
            for n in range(int(rate * LATENCY_SECONDS)):
                await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
                tasks.append(asyncio.create_task(one(n)))
            await asyncio.gather(*tasks)
            await watch.wait_for(set(sent), timeout_s=60)
    samples = [ms(watch.arrived[e] - t) for e, t in sent.items() if e in watch.arrived]
    p50, p95, p99 = (percentile(samples, q) for q in (50, 95, 99))
    return [Measurement(
        "webhook_to_result_p50", p50, "ms", goal="p50 <= 20 ms, p99 <= 100 ms",
        met=p50 <= 20 and p99 <= 100 and len(samples) == len(sent),
        params={"rate_per_s": round(rate, 1), "events": len(sent), "completed": len(samples),
                "p95_ms": round(p95, 2), "p99_ms": round(p99, 2),
                "function": "warm python, returns its input"},
        samples={"webhook→result": samples},
    )]


async def throughput(stack: Stack) -> list[Measurement]:
    """Events produced straight to a source's topic → their final Results, beside direct
    calls to warm containers of the same function at the same concurrency, and a raw
    aiokafka relay of the same events."""
    source = "bench-throughput"
    async with stack.api() as api:
        await _hook(api, source, "bench-throughput-fn")
    kafka = stack.settings.kafka
    topic = f"{kafka.topic_prefix}.events.{source}"
    events = [Event(id=new_event_id(), source=source, type="bench", data=b'{"n":1}',
                    datacontenttype="application/json") for _ in range(THROUGHPUT_EVENTS)]
    cpu = CpuMeter({name: stack.pid(name) for name in ("worker", "kafka")})
    async with ResultWatch(stack) as watch:
        warm_up = [Event(id=new_event_id(), source=source, type="bench", data=b'{"n":0}',
                         datacontenttype="application/json") for _ in range(WARM_UP)]
        await _produce(kafka.bootstrap_servers(), topic, warm_up)
        await watch.wait_for({e.id for e in warm_up}, timeout_s=60)
        cpu.start()
        start = time.perf_counter()
        await _produce(kafka.bootstrap_servers(), topic, events)
        await watch.wait_for({e.id for e in events}, timeout_s=300)
        cpu.stop()
        done = [watch.arrived[e.id] for e in events if e.id in watch.arrived]
        ours = len(done) / (max(done, default=start + 1) - start)
    stack.measured["events_to_results"] = ours
    direct = await direct_rate(stack, THROUGHPUT_EVENTS // 2, CONCURRENCY)
    sink = TopicSpec(f"{kafka.topic_prefix}.bench-relay", kafka.partitions)
    await ensure_topics(kafka, [sink])
    relay = await _relay(kafka.bootstrap_servers(), topic, sink.name, events)
    return [Measurement(
        "events_to_results", ours, "events/s",
        f"direct HTTP to warm containers, {CONCURRENCY} at once", direct,
        goal=">= 0.8x", met=ours >= 0.8 * direct and len(done) == len(events),
        params={"events": len(events), "completed": len(done), "concurrency": CONCURRENCY,
                "relay_events_per_s": round(relay), "ratio_to_relay": round(ours / relay, 3),
                "function": "warm python, returns its input", **cpu.per_item_ms(len(done))},
    )]


async def _produce(bootstrap: str, topic: str, events: list[Event]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        sent = [await producer.send(topic, dumps(e.to_dict()), key=e.id.encode())
                for e in events]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def _relay(bootstrap: str, source: str, sink: str, events: list[Event]) -> float:
    """The baseline: consume the same events and produce one record each, acks=all."""
    consumer = AIOKafkaConsumer(source, bootstrap_servers=bootstrap,
                                group_id=f"bench-relay-{new_event_id()}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await consumer.start()
    await producer.start()
    try:
        wanted = {e.id for e in events}
        relayed, start = 0, time.perf_counter()
        while relayed < len(wanted):
            batches = await consumer.getmany(timeout_ms=1000)
            sends = [await producer.send(sink, m.value, key=m.key)
                     for ms_ in batches.values() for m in ms_ if m.key.decode() in wanted]
            await asyncio.gather(*sends)
            await consumer.commit()
            relayed += len(sends)
        return relayed / (time.perf_counter() - start)
    finally:
        await consumer.stop()
        await producer.stop()


async def memory(stack: Stack) -> list[Measurement]:
    await asyncio.sleep(5)  # idle
    rss = {name: _rss_mb(stack.pid(name)) for name in ("gateway", "worker")}
    total = sum(rss.values())
    return [Measurement("idle_memory", total, "MB RSS", goal="<= 300 MB", met=total <= 300,
                        params={f"{k}_mb": round(v, 1) for k, v in rss.items()})]


def _rss_mb(pid: int) -> float:
    """The RSS of ``pid`` and of its children (the gateway's processes)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return _own_rss_mb(pid) + sum(_rss_mb(int(child)) for child in children)


def _own_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


SOAK_S = float(os.environ.get("FAASFLOW_BENCH_SOAK_S", "300"))
SOAK_SAMPLE_S = 10.0


async def soak(stack: Stack) -> list[Measurement]:
    """RSS of gateway + worker while webhooks arrive steadily for ``SOAK_S``, at half the
    rate ``throughput`` measured: flat means no more than 10% above the first minute."""
    rate = max(10.0, stack.measured.get("events_to_results", 2 * RATE) / 2)
    async with stack.api() as api:
        hook = await _hook(api, "bench-soak", "bench-soak-fn")
    pids = {name: stack.pid(name) for name in ("gateway", "worker")}
    rss: list[float] = []
    failed = 0
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as anonymous:

        async def one(n: int) -> None:
            nonlocal failed
            try:
                (await anonymous.post(hook["url"], json={"n": n})).raise_for_status()
            except httpx.HTTPError:
                failed += 1

        tasks: set[asyncio.Task[None]] = set()
        start = time.perf_counter()
        next_sample = start
        n = 0
        while (now := time.perf_counter()) < start + SOAK_S:
            if now >= next_sample:
                rss.append(sum(_rss_mb(pid) for pid in pids.values()))
                next_sample += SOAK_SAMPLE_S
            task = asyncio.create_task(one(n))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
            await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
        await asyncio.gather(*tasks)
    first = median(rss[: max(1, int(60 / SOAK_SAMPLE_S))])
    last = median(rss[-max(1, int(60 / SOAK_SAMPLE_S)):])
    growth = (last - first) / first
    return [Measurement(
        "memory_under_load", last, "MB RSS", "the first minute", first,
        goal="flat: <= 1.1x the first minute", met=growth <= 0.1 and failed == 0,
        params={"seconds": SOAK_S, "rate_per_s": round(rate, 1), "webhooks": n,
                "failed": failed, "growth_pct": round(100 * growth, 1)},
        samples={"RSS (MB), every 10 s": rss},
    )]
