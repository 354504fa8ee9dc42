"""The function runtime: cold invoke against ``docker run --rm``, warm invoke through the
gateway against a direct call to a warm container of the same kind."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

import aiohttp
import httpx

from bench.harness import Measurement, median, ms, percentile
from bench.stack import Stack
from pipeline.runtime.engine import Engine
from pipeline.runtime.pool import FunctionPool
from pipeline.runtime.warm import RUNTIME_IMAGES, WarmContainer, WarmRunner
from pipeline.specs import FunctionSpec, Language, Mode

COLD_IMAGE = "faasflow/hello:latest"
TRIVIAL = "def main(event, context):\n    return event\n"
COLD_CALLS = 15
WARM_CALLS = 600
CONCURRENCY = 16
THROUGHPUT_S = 8.0


async def deploy(api: httpx.AsyncClient, name: str, **body: Any) -> dict[str, Any]:
    response = await api.put(f"/v1/functions/{name}", json=body)
    response.raise_for_status()
    return dict(response.json())


async def cold(stack: Stack) -> list[Measurement]:
    async with stack.api() as api:
        await deploy(api, "bench-cold", image=COLD_IMAGE)
        gateway = []
        for _ in range(COLD_CALLS):
            t0 = time.perf_counter()
            (await api.post("/function/bench-cold", content=b"bench")).raise_for_status()
            gateway.append(time.perf_counter() - t0)
    raw = await asyncio.to_thread(_docker_run_samples)
    value, baseline = ms(median(gateway)), ms(median(raw))
    return [Measurement(
        "cold_invoke_p50", value, "ms", "docker run --rm -i (same image)", baseline,
        goal="<= 1.1x baseline", met=value <= 1.1 * baseline,
        params={"calls": COLD_CALLS, "image": COLD_IMAGE, "path": "POST /function/{name}"},
        samples={"faasflow": [ms(s) for s in gateway], "docker run": [ms(s) for s in raw]},
    )]


def _docker_run_samples() -> list[float]:
    samples = []
    for _ in range(COLD_CALLS):
        t0 = time.perf_counter()
        subprocess.run(["docker", "run", "--rm", "-i", COLD_IMAGE], input=b"bench",
                       check=True, capture_output=True)
        samples.append(time.perf_counter() - t0)
    return samples


def warm_spec(stack: Stack, max_concurrency: int) -> FunctionSpec:
    return FunctionSpec(name="bench-direct", image=RUNTIME_IMAGES[Language.PYTHON],
                        image_digest=RUNTIME_IMAGES[Language.PYTHON], mode=Mode.WARM,
                        runtime=Language.PYTHON, code=TRIVIAL,
                        max_concurrency=max_concurrency)


async def direct_call(container: WarmContainer, n: int) -> None:
    status, _ = await container.post(
        "/run", {"value": {"n": n}, "activation_id": str(n), "deadline": 0}, timeout_s=30,
        headers={"X-Faasflow-Logs": "1"})
    assert status == 200, status


async def call_warm(pool: FunctionPool[WarmContainer], n: int) -> None:
    """One call straight to a warm container of the pool: what the platform adds to."""
    container, _ = await pool.acquire()
    try:
        await direct_call(container, n)
    finally:
        await pool.release(container, healthy=True)


@contextlib.asynccontextmanager
async def warm_calls(stack: Stack, concurrency: int,
                     warm_up: int) -> AsyncIterator[Callable[[int], Awaitable[None]]]:
    """``call(n)``: one call straight to a warm container of the trivial function, at most
    ``concurrency`` at once; ``warm_up`` calls are made first (every container started)."""
    engine = Engine()
    runner = WarmRunner(stack.settings, lambda function: {}, engine)
    try:
        pool = runner.pool(warm_spec(stack, concurrency))
        in_flight = asyncio.Semaphore(concurrency)

        async def call(n: int) -> None:
            async with in_flight:
                await call_warm(pool, n)

        await asyncio.gather(*(call(n) for n in range(warm_up)))
        yield call
    finally:
        await runner.close()
        engine.close()


async def direct_rate(stack: Stack, calls: int, concurrency: int) -> float:
    """Calls per second straight to warm containers of the trivial function, at most
    ``concurrency`` at once."""
    async with warm_calls(stack, concurrency, warm_up=4 * concurrency) as call:
        start = time.perf_counter()
        await asyncio.gather(*(call(n) for n in range(calls)))
        return calls / (time.perf_counter() - start)


async def warm(stack: Stack) -> list[Measurement]:
    async with stack.api() as api:
        await deploy(api, "bench-warm", runtime="python", code=TRIVIAL,
                     max_concurrency=CONCURRENCY)
    # aiohttp's client, as the latency measure's: httpx's 1.5 ms of CPU a request would be
    # counted in the gateway's time, and the direct baseline pays nothing like it
    async with aiohttp.ClientSession(
            stack.url, headers={"Authorization": f"Bearer {stack.token}"}) as session:
        gateway = await _sequential(lambda n: _via_gateway(session, n))
        gateway_rps = await _throughput(lambda n: _via_gateway(session, n))
    engine = Engine()
    runner = WarmRunner(stack.settings, lambda function: {}, engine)
    try:
        pool = runner.pool(warm_spec(stack, CONCURRENCY))
        direct = await _sequential(partial(call_warm, pool))
        direct_rps = await _throughput(partial(call_warm, pool))
    finally:
        await runner.close()
        engine.close()
    p50, base50 = ms(percentile(gateway, 50)), ms(percentile(direct, 50))
    return [
        Measurement(
            "warm_invoke_p50", p50, "ms", "direct HTTP to a warm container", base50,
            goal="p50 overhead <= 1 ms", met=p50 - base50 <= 1.0,
            params={"calls": WARM_CALLS, "p99_ms": round(ms(percentile(gateway, 99)), 3),
                    "baseline_p99_ms": round(ms(percentile(direct, 99)), 3),
                    "overhead_p50_ms": round(p50 - base50, 3)},
            samples={"gateway": [ms(s) for s in gateway], "direct": [ms(s) for s in direct]},
        ),
        Measurement(
            "warm_invoke_throughput", gateway_rps, "req/s", "direct HTTP to warm containers",
            direct_rps, goal=">= 0.6x baseline", met=gateway_rps >= 0.6 * direct_rps,
            params={"clients": CONCURRENCY, "seconds": THROUGHPUT_S,
                    "gateway_processes": stack.settings.gateway.process_count()},
        ),
    ]


async def _via_gateway(session: aiohttp.ClientSession, n: int) -> None:
    async with session.post("/function/bench-warm", json={"n": n}) as response:
        response.raise_for_status()
        await response.read()


async def _sequential(call: Any) -> list[float]:
    for n in range(50):  # warm up: containers, connections, caches
        await call(n)
    samples = []
    for n in range(WARM_CALLS):
        t0 = time.perf_counter()
        await call(n)
        samples.append(time.perf_counter() - t0)
    return samples


async def _throughput(call: Any) -> float:
    done = 0
    deadline = time.perf_counter() + THROUGHPUT_S

    async def client(k: int) -> None:
        nonlocal done
        n = k
        while time.perf_counter() < deadline:
            await call(n)
            done += 1
            n += CONCURRENCY

    await asyncio.gather(*(client(k) for k in range(CONCURRENCY)))  # warm-up round
    done, deadline = 0, time.perf_counter() + THROUGHPUT_S
    await asyncio.gather(*(client(k) for k in range(CONCURRENCY)))
    return done / THROUGHPUT_S
