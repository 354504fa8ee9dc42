"""The warm containers' client, against the Python runtime's own server (a real process on a
unix socket) and against servers that misbehave, on both event loops the platform runs."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvloop

from pipeline.runtime.wire import Broken, RuntimeConnection, Unreached

RUNTIME = Path(__file__).parents[2] / "functions" / "runtime" / "python" / "runtime.py"
HANDLER = "import time\ndef main(event, context):\n    time.sleep(event.get('sleep', 0))\n" \
          "    return event\n"
Loop = Callable[[Awaitable[Any]], Any]
LOOPS = {"asyncio": asyncio.run, "uvloop": uvloop.run}


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> Loop:
    return LOOPS[request.param]  # type: ignore[return-value]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    path, handler = tmp_path / "runtime.sock", tmp_path / "handler.py"
    handler.write_text(HANDLER)
    server = subprocess.Popen([sys.executable, str(RUNTIME)], stderr=subprocess.DEVNULL,
                              env={**os.environ, "FAASFLOW_RUNTIME_SOCKET": str(path),
                                   "FAASFLOW_HANDLER": str(handler), "FAASFLOW_MAIN": "main"})
    deadline = time.monotonic() + 10
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    yield str(path), server
    server.kill()
    server.wait()


@pytest.fixture
def runtime(server: tuple[str, subprocess.Popen[bytes]]) -> str:
    return server[0]


def call(value: dict[str, Any]) -> bytes:
    return json.dumps({"value": value, "activation_id": "a", "deadline": 0, "env": {}}).encode()


async def runs(connection: RuntimeConnection, value: dict[str, Any],
               timeout_s: float = 5.0) -> tuple[int, Any]:
    status, body = await connection.request("POST", "/run", call(value), timeout_s,
                                            {"Content-Type": "application/json"})
    return status, json.loads(body)


def test_calls_reuse_one_connection(run: Loop, runtime: str) -> None:
    async def main() -> None:
        connection = RuntimeConnection(runtime)
        for n in range(50):
            status, reply = await runs(connection, {"n": n})
            assert status == 200
            assert reply == {"n": n}
        assert (await connection.request("GET", "/health", b"", 1.0))[0] == 200
        assert connection.connections == 1  # kept alive
        await connection.aclose()

    run(main())


def test_a_health_check_during_a_call_takes_a_connection_of_its_own(
        run: Loop, runtime: str) -> None:
    async def main() -> None:
        connection = RuntimeConnection(runtime)
        slow = asyncio.create_task(runs(connection, {"sleep": 0.3}))
        await asyncio.sleep(0.1)
        assert await connection.request("GET", "/health", b"", 1.0) == (200, b'{"ok":true}')
        assert await slow == (200, {"sleep": 0.3})
        assert connection.connections == 2
        assert (await runs(connection, {}))[0] == 200
        assert connection.connections == 2  # both reused
        await connection.aclose()
        assert connection.connections == 0

    run(main())


def test_a_runtime_error_is_its_status_and_body(run: Loop, runtime: str) -> None:
    async def main() -> None:
        connection = RuntimeConnection(runtime)
        status, body = await connection.request("POST", "/nowhere", b"{}", 1.0)
        assert status == 404
        assert "no route" in json.loads(body)["error"]
        assert (await runs(connection, {"again": True}))[0] == 200
        await connection.aclose()

    run(main())


def test_a_call_past_its_timeout_is_a_timeout_and_the_next_call_reconnects(
        run: Loop, runtime: str) -> None:
    async def main() -> None:
        connection = RuntimeConnection(runtime)
        with pytest.raises(TimeoutError):
            await runs(connection, {"sleep": 0.5}, timeout_s=0.1)
        status, reply = await runs(connection, {"after": 1})
        assert (status, reply) == (200, {"after": 1})  # not the late answer to the first
        assert connection.connections == 1
        await connection.aclose()

    run(main())


def test_no_runtime_listening_is_unreached(run: Loop, tmp_path: Path) -> None:
    async def main() -> None:
        with pytest.raises(Unreached):
            await RuntimeConnection(str(tmp_path / "nobody.sock")).request(
                "GET", "/health", b"", 1.0)

    run(main())


def test_a_runtime_killed_between_calls_is_unreached_then(
        run: Loop, server: tuple[str, subprocess.Popen[bytes]]) -> None:
    runtime, process = server

    async def main() -> None:
        connection = RuntimeConnection(runtime)
        assert (await runs(connection, {}))[0] == 200
        process.kill()
        os.unlink(runtime)  # the socket gone with its container's volume
        await asyncio.sleep(0.1)
        with pytest.raises(Unreached):  # it closed the idle connection as it died
            await runs(connection, {})
        await connection.aclose()

    run(main())


async def serve(path: str, answer: bytes, *, close: bool) -> asyncio.AbstractServer:
    """A server that reads a request and answers ``answer`` (then closes, if ``close``)."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        if close:
            writer.close()

    return await asyncio.start_unix_server(handle, path)


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",  # cut short
    b"NOT HTTP AT ALL\r\n\r\n",
    b"",  # closed without a word
])
def test_a_connection_that_breaks_mid_call_is_broken(
        run: Loop, tmp_path: Path, answer: bytes) -> None:
    async def main() -> None:
        path = str(tmp_path / "bad.sock")
        server = await serve(path, answer, close=True)
        connection = RuntimeConnection(path)
        with pytest.raises(Broken):
            await connection.request("POST", "/run", b"{}", 2.0)
        await asyncio.sleep(0.01)
        assert connection.connections == 0
        await connection.aclose()
        server.close()

    run(main())


def test_an_answer_that_closes_the_connection_is_read_and_not_reused(
        run: Loop, tmp_path: Path) -> None:
    async def main() -> None:
        path = str(tmp_path / "closing.sock")
        answer = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
        server = await serve(path, answer, close=True)
        connection = RuntimeConnection(path)
        for _ in range(3):
            assert await connection.request("GET", "/health", b"", 2.0) == (200, b"ok")
            await asyncio.sleep(0.01)
            assert connection.connections == 0
        await connection.aclose()
        server.close()

    run(main())
