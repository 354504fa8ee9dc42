"""Connections kept open only while their clients keep up.

uvicorn's HTTP/1.1 protocol closes a connection only when it sits idle after an answer
(keep-alive): one that sends nothing, half a request head, or a body a byte at a time is
held for ever, and once the file descriptors run out the gateway accepts nothing more.
``GuardedProtocol`` is that protocol (uvicorn's httptools one: its parser is C, h11's is
Python) with three rules added:

- the request head must be complete ``header_timeout_s`` after the connection opened or
  after its previous answer: else 408 if the client began one, or a silent close;
- a request body must arrive at ``body_min_rate`` bytes/s once ``body_grace_s`` have
  passed, counting only the time the gateway is ready to read it: else 408 (or a close,
  when the answer has started);
- at most ``max_connections`` are open: one more closes the longest idle one (waiting for
  a request head), or, when no connection is idle, is answered 503 and closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from pipeline.gateway.errors import error_body
from pipeline.records import dumps

log = logging.getLogger(__name__)

TICK_S = 1.0  # how often a body's rate is checked

Closed = Callable[[str], None]  # told why a connection was closed: one of the reasons below
IDLE = "idle"  # it sent nothing for the header timeout (opened, or after an answer)
HEAD_LATE = "head_late"  # it began a request head and did not finish it in time
BODY_SLOW = "body_slow"  # its request body came slower than the minimum rate
EVICTED = "evicted"  # it was the longest idle when one connection too many opened
REFUSED = "refused"  # it opened when there were too many, none of them idle

# Whose turn it is on a connection, as the parser's callbacks tell it
HEAD = "head"  # the client's: a request head (none begun, or part of one)
BODY = "body"  # the client's: the body of a request whose head is complete
OURS = "ours"  # the gateway's: a whole request is in, its answer not yet complete


@dataclass(frozen=True, slots=True)
class Limits:
    header_timeout_s: float
    body_min_rate: int
    body_grace_s: float
    max_connections: int
    backlog: int  # connections the kernel queues before the server accepts them


class Idle:
    """The connections waiting for a request head, longest waiting first."""

    def __init__(self) -> None:
        self._waiting: dict[GuardedProtocol, None] = {}

    def add(self, connection: GuardedProtocol) -> None:
        self._waiting.pop(connection, None)
        self._waiting[connection] = None

    def discard(self, connection: GuardedProtocol) -> None:
        self._waiting.pop(connection, None)

    def oldest(self) -> GuardedProtocol | None:
        return next(iter(self._waiting), None)


@dataclass(frozen=True, slots=True)
class Shared:
    """What the connections of one server share."""

    limits: Limits
    idle: Idle
    closed: Closed  # told each time the rules close a connection, and why


def raw_answer(status: int, reason: str, code: str, message: str,
               headers: tuple[str, ...] = ()) -> bytes:
    """A whole HTTP/1.1 answer that closes the connection, written past the protocol: the
    request it answers never got far enough for the application to answer it."""
    body = dumps(error_body(code, message))
    head = [f"HTTP/1.1 {status} {reason}", "content-type: application/json",
            f"content-length: {len(body)}", "connection: close", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class GuardedProtocol(HttpToolsProtocol):
    """One connection. ``protocol_for`` makes the class a server uses, with what all its
    connections share."""

    shared: ClassVar[Shared]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turn = HEAD
        self._timer: asyncio.TimerHandle | None = None
        self._waiting_for: str | None = None  # "head", "body" or None (the gateway's turn)
        self._received = 0  # bytes read from the client so far
        self._mark = 0  # ``_received`` when the head or the body began to be awaited
        self._body_waited_s = 0.0  # time the gateway was ready to read the body
        self._last_tick = 0.0

    @property
    def limits(self) -> Limits:
        return self.shared.limits

    # uvicorn's hooks: each then arms the timer the connection's new state calls for

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections and not self._evict_idle():
            log.warning("%d connections open: refusing one", len(self.connections))
            transport.write(raw_answer(503, "Service Unavailable", "too_many_connections",
                                       "too many open connections; retry later",
                                       ("retry-after: 1",)))
            transport.close()
            self.shared.closed(REFUSED)
            return
        self._follow()

    def data_received(self, data: bytes) -> None:
        self._received += len(data)
        super().data_received(data)  # the parser's callbacks below set the turn
        self._follow()

    def on_headers_complete(self) -> None:
        self._turn = BODY
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._turn = OURS
        super().on_message_complete()

    def on_response_complete(self) -> None:
        # a request pipelined behind the answered one is whole already: still our turn
        self._turn = OURS if self.pipeline else HEAD
        super().on_response_complete()
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    # the rules

    def _follow(self) -> None:
        if self.transport.is_closing():
            self._stop_waiting()
            return
        state = self._turn
        if state == HEAD and self._waiting_for != "head":
            self._stop_waiting()
            self._waiting_for, self._mark = "head", self._received
            self.shared.idle.add(self)
            self._timer = self.loop.call_later(self.limits.header_timeout_s, self._head_late)
        elif state == BODY and self._waiting_for != "body":
            self._stop_waiting()
            self._waiting_for, self._mark = "body", self._received
            self._body_waited_s, self._last_tick = 0.0, self.loop.time()
            self._timer = self.loop.call_later(TICK_S, self._body_tick)
        elif state == OURS:
            self._stop_waiting()

    def _stop_waiting(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._waiting_for = None
        self.shared.idle.discard(self)

    def _head_late(self) -> None:
        self._timer = None
        if self._received == self._mark:
            self._close(IDLE)
            return
        self.transport.write(raw_answer(
            408, "Request Timeout", "request_timeout",
            f"the request head was not complete within {self.limits.header_timeout_s:g} s"))
        self._close(HEAD_LATE)

    def _body_tick(self) -> None:
        now = self.loop.time()
        cycle = self.cycle
        ready = not self.flow.read_paused and not (cycle and cycle.waiting_for_100_continue)
        if ready:
            self._body_waited_s += now - self._last_tick
        self._last_tick = now
        owed = self.limits.body_min_rate * (self._body_waited_s - self.limits.body_grace_s)
        if self._received - self._mark >= owed:
            self._timer = self.loop.call_later(TICK_S, self._body_tick)
            return
        self._timer = None
        if cycle is not None and not cycle.response_started:
            cycle.disconnected = True  # the application reads no more and its answer is dropped
            self.transport.write(raw_answer(
                408, "Request Timeout", "request_timeout",
                f"the request body arrived slower than {self.limits.body_min_rate} bytes/s"))
        self._close(BODY_SLOW)

    def _evict_idle(self) -> bool:
        oldest = self.shared.idle.oldest()
        if oldest is None:
            return False
        oldest._close(EVICTED)
        return True

    def _close(self, reason: str) -> None:
        self._stop_waiting()
        self.transport.close()
        self.shared.closed(reason)


def protocol_for(limits: Limits, closed: Closed) -> type[GuardedProtocol]:
    """The protocol class of one server: its connections share ``limits``, one list of
    idle connections, and ``closed``, told each time the rules close one."""

    class Protocol(GuardedProtocol):
        shared = Shared(limits, Idle(), closed)

    return Protocol
