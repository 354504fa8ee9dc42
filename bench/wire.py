"""The client of warm containers: the CPU one call costs the caller, faasflow's
``RuntimeConnection`` beside aiohttp's client session (what the executor used before), both
calling the same Python runtime server on a unix socket, one call at a time as a warm
container takes them, the two interleaved in rounds. CPU time is this process's only: the
server's is the same for both."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from bench.harness import Measurement, median
from bench.runtime import TRIVIAL
from bench.stack import Stack
from pipeline.records import dumps
from pipeline.runtime.wire import RuntimeConnection

RUNTIME = Path(__file__).parents[1] / "functions" / "runtime" / "python" / "runtime.py"
CALLS = 2_000
ROUNDS = 5
BODY = dumps({"value": {"n": 1}, "activation_id": "bench", "deadline": 0, "env": {}})


async def warm_client(stack: Stack) -> list[Measurement]:
    with tempfile.TemporaryDirectory() as scratch:
        server, path = await asyncio.to_thread(_serve, Path(scratch))
        try:
            mine, aio = await _rounds(path)
        finally:
            server.terminate()
            await asyncio.to_thread(server.wait)
    ours, theirs = median(mine), median(aio)
    return [Measurement(
        "warm_client_cpu", ours, "µs/call", "aiohttp ClientSession", theirs,
        goal="< baseline", met=ours < theirs,
        params={"calls": CALLS, "rounds": ROUNDS, "server": "runtime.py, the trivial function",
                "per_round_us": {"ours": [round(x, 1) for x in mine],
                                 "aiohttp": [round(x, 1) for x in aio]}},
    )]


def _serve(scratch: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The Python runtime, the trivial function loaded, listening on a socket in
    ``scratch``."""
    path, handler = scratch / "runtime.sock", scratch / "handler.py"
    handler.write_text(TRIVIAL)
    server = subprocess.Popen([sys.executable, str(RUNTIME)], stderr=subprocess.DEVNULL,
                              env={**os.environ, "FAASFLOW_RUNTIME_SOCKET": str(path),
                                   "FAASFLOW_HANDLER": str(handler), "FAASFLOW_MAIN": "main"})
    while not path.exists():
        time.sleep(0.05)
    return server, str(path)


async def _rounds(path: str) -> tuple[list[float], list[float]]:
    connection = RuntimeConnection(path)
    session = aiohttp.ClientSession("http://runtime", connector=aiohttp.UnixConnector(path=path))

    async def ours() -> None:
        await connection.request("POST", "/run", BODY, 5.0,
                                 {"Content-Type": "application/json"})

    async def theirs() -> None:
        async with session.post("/run", data=BODY, timeout=aiohttp.ClientTimeout(total=5.0),
                                headers={"Content-Type": "application/json"}) as response:
            await response.read()

    try:
        mine, aio = [], []
        for _ in range(ROUNDS):
            mine.append(await _cpu_per_call(ours))
            aio.append(await _cpu_per_call(theirs))
        return mine, aio
    finally:
        await connection.aclose()
        await session.close()


async def _cpu_per_call(call: Callable[[], Awaitable[None]]) -> float:
    await call()  # connected
    start = time.process_time()
    for _ in range(CALLS):
        await call()
    return (time.process_time() - start) / CALLS * 1e6
