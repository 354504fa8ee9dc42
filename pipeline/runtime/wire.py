"""One keep-alive HTTP/1.1 connection to a warm container's runtime, over its unix socket.

A warm container serves one call at a time, so its client needs neither a pool nor
pipelining: one connection, opened on the first call and again after it broke, a request
written in one piece, and the response parsed by httptools (llhttp, as uvicorn's). A call
costs the caller 5 times less CPU than through aiohttp's client session, which the executor
used before (``python -m bench warm_client``, the same calls to the same runtime: 28
against 139 µs on uvloop, the worker's loop; 44 against 161 on asyncio's). The call to the
container was the executor's largest cost: a fifth of a worker's CPU in a py-spy profile of
``events_to_results``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import NamedTuple, cast

import httptools


class Unreached(Exception):
    """A call could not connect to the container's runtime: nothing reached it."""


class Broken(Exception):
    """The connection to the runtime broke during a call."""


class Reply(NamedTuple):
    """A whole response: its status, its headers (names in lower case; a repeated one
    keeps its last value) and its body."""

    status: int
    headers: dict[str, str]
    body: bytes


class _Response(asyncio.Protocol):
    """The transport's protocol: feeds what arrives to the parser, one response at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._body: list[bytes] = []
        self._headers: dict[str, str] = {}
        self._done: asyncio.Future[Reply] | None = None
        self.keep_alive = True
        self.lost = asyncio.get_running_loop().create_future()

    def expect(self) -> asyncio.Future[Reply]:
        self._done = asyncio.get_running_loop().create_future()
        self._body.clear()
        self._headers = {}
        return self._done

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(Broken(f"malformed response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.lost.done():
            self.lost.set_result(None)
        self._fail(Broken(f"the runtime closed the connection ({exc or 'EOF'})"))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self._parser.should_keep_alive()
        if self._done is not None and not self._done.done():
            self._done.set_result(Reply(self._parser.get_status_code(), self._headers,
                                        b"".join(self._body)))

    def _fail(self, exc: Exception) -> None:
        self.keep_alive = False
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()


class RuntimeConnection:
    """Calls to one runtime. The caller that holds the container makes one at a time; a
    health check of the pool may overlap it, and takes a connection of its own."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._idle: list[_Response] = []  # connections kept alive between calls
        self._open: set[_Response] = set()

    async def request(self, method: str, target: str, body: bytes, timeout_s: float,
                      headers: Mapping[str, str] | None = None) -> tuple[int, bytes]:
        """The status and body the runtime answered; ``Unreached``, ``TimeoutError`` (after
        ``timeout_s``) or ``Broken`` when it did not."""
        reply = await self.exchange(method, target, body, timeout_s, headers)
        return reply.status, reply.body

    async def exchange(self, method: str, target: str, body: bytes, timeout_s: float,
                       headers: Mapping[str, str] | None = None) -> Reply:
        """``request``, with the response's headers too."""
        protocol = await self._connection()
        head = [f"{method} {target} HTTP/1.1\r\nHost: runtime\r\n"
                f"Content-Length: {len(body)}\r\n"]
        head.extend(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        head.append("\r\n")
        answer = protocol.expect()
        assert protocol.transport is not None
        protocol.transport.write("".join(head).encode("latin-1") + body)
        try:
            async with asyncio.timeout(timeout_s):
                reply = await answer
        except BaseException:  # a timeout, a cancellation, a broken call: never reused
            _abort(protocol)
            raise
        if protocol.keep_alive and protocol.transport is not None:
            self._idle.append(protocol)
        else:
            _abort(protocol)
        return reply

    async def _connection(self) -> _Response:
        while self._idle:
            protocol = self._idle.pop()
            if protocol.transport is not None:
                return protocol
        try:
            _, protocol = await asyncio.get_running_loop().create_unix_connection(
                _Response, self._path)
        except OSError as exc:
            raise Unreached(f"cannot connect to {self._path}: {exc}") from exc
        self._open.add(protocol)
        protocol.lost.add_done_callback(lambda _: self._open.discard(protocol))
        return protocol

    @property
    def connections(self) -> int:
        """Connections open now (idle or in a call)."""
        return len(self._open)

    async def aclose(self) -> None:
        """Close every connection, and wait until their transports let go of the sockets."""
        self._idle.clear()
        open_now = list(self._open)
        for protocol in open_now:
            _abort(protocol)
        await asyncio.gather(*(p.lost for p in open_now))


def _abort(protocol: _Response) -> None:
    if protocol.transport is not None:
        protocol.transport.abort()
