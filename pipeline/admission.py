"""Per-function admission: how many of a function's invocations run at once in this worker,
and how many start per second. A slow, failing or retrying function fills only its own
slots, so it cannot starve the others; invocations waiting for a slot hold no container.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from pipeline.specs import FunctionSpec


class RateLimit:
    """A token bucket: ``rate`` starts per second on average, bursts of up to ``burst``."""

    def __init__(self, rate: float, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._clock = clock
        self._tokens = self.burst
        self._at = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def delay(self) -> float:
        """Seconds until a token is there (0 when one is)."""
        self._refill()
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate

    async def take(self) -> None:
        async with self._lock:  # first come, first served
            wait = self.delay()
            if wait > 0:
                await asyncio.sleep(wait)
                self._refill()
            self._tokens -= 1  # may dip below 0 by a rounding error: the next one waits


class _Gate:
    def __init__(self, function: FunctionSpec) -> None:
        self.concurrency = function.max_concurrency
        self.rate = function.rate_limit
        self.slots = asyncio.Semaphore(function.max_concurrency)
        self.limit = RateLimit(function.rate_limit) if function.rate_limit else None
        self.running = 0
        self.waiting = 0


class Admission:
    """One gate per function, rebuilt when its limits change (calls already admitted finish
    under the old one), and a bound on the runs of all functions together."""

    def __init__(self, max_running: int) -> None:
        self._gates: dict[str, _Gate] = {}
        self._running = asyncio.Semaphore(max_running)

    def _gate(self, function: FunctionSpec) -> _Gate:
        gate = self._gates.get(function.name)
        if gate is None or (gate.concurrency, gate.rate) != (function.max_concurrency,
                                                             function.rate_limit):
            gate = self._gates[function.name] = _Gate(function)
        return gate

    @asynccontextmanager
    async def slot(self, function: FunctionSpec) -> AsyncIterator[None]:
        """Hold one of the function's slots (waiting for one, and for its rate limit)."""
        gate = self._gate(function)
        gate.waiting += 1
        try:
            await gate.slots.acquire()
        finally:
            gate.waiting -= 1
        try:
            if gate.limit is not None:
                await gate.limit.take()
            async with self._running:
                gate.running += 1
                try:
                    yield
                finally:
                    gate.running -= 1
        finally:
            gate.slots.release()

    def load(self) -> dict[str, dict[str, int]]:
        """Per function: running and waiting invocations (for health reports)."""
        return {name: {"running": g.running, "waiting": g.waiting}
                for name, g in self._gates.items() if g.running or g.waiting}


class InflightBudget:
    """How much a worker holds in memory at once: records received but not yet finished
    (an invocation waiting for its function's slot or a retry included). Beyond
    ``max_records`` or ``max_bytes`` the agent stops taking records until some finish; a
    record larger than the whole budget is taken when nothing else is held."""

    def __init__(self, max_records: int, max_bytes: int) -> None:
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.records = 0
        self.bytes = 0
        self._freed = asyncio.Event()  # set when records are given back
        self._was_full = False

    @property
    def full(self) -> bool:
        return self.records >= self.max_records or self.bytes >= self.max_bytes

    def was_full(self) -> bool:
        """Whether an agent waited for room since the last call (or it is full now): the
        records behind it then waited in the consumer's buffers, received by the worker but not
        yet by the agent, which is being busy, not having skipped them."""
        was, self._was_full = self._was_full or self.full, False
        return was

    def _room(self, size: int) -> bool:
        return self.records == 0 or (
            self.records < self.max_records and self.bytes + size <= self.max_bytes)

    async def take(self, size: int) -> None:
        """Without a lock (the event loop runs one ``take`` at a time): the usual case,
        room, costs no await (a Condition took 7% of the worker's time)."""
        while not self._room(size):
            self._was_full = True
            self._freed.clear()
            await self._freed.wait()
        self.records += 1
        self.bytes += size

    def give_back(self, size: int) -> None:
        self.records -= 1
        self.bytes -= size
        self._freed.set()
