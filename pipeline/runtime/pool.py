"""A warm pool per function: reuse idle containers, start more on demand up to a bound,
queue (never fail) beyond it, reap the idle, replace the dead. The pools of one process
share a cap on containers; a pool that needs one when the cap is reached takes the place
of another pool's longest idle container, as OpenWhisk's invoker evicts idle containers of
other actions (waiting out the idle timeout stalled a function for 5 minutes while others'
idle containers held every place).

The pool knows containers only as ``Instance``s, so its policy is tested with in-memory
instances; ``pipeline.runtime.warm`` gives it real containers.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

log = logging.getLogger(__name__)


class Instance(Protocol):
    async def healthy(self) -> bool: ...

    async def destroy(self) -> None: ...


I = TypeVar("I", bound=Instance)  # noqa: E741 (the conventional name for "instance")


# An instance that answered a call, or a health check, this recently is not checked again:
# under load every instance is in use all the time, and its calls are its health checks.
HEALTHY_FOR_S = 2.0


@dataclass
class _Idle(Generic[I]):
    instance: I
    since: float = field(default_factory=time.monotonic)
    checked: float = field(default_factory=time.monotonic)  # known healthy then


class PoolRetired(Exception):
    """The pool was drained by a redeploy while the caller waited: use the new pool."""


class Capacity:
    """A cap on warm containers across every pool of one process."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._changed = asyncio.Condition()
        self._pools: weakref.WeakSet[FunctionPool[Any]] = weakref.WeakSet()
        self._waiting = 0

    def share(self, pool: FunctionPool[Any]) -> None:
        self._pools.add(pool)

    async def take(self, wanting: FunctionPool[Any]) -> None:
        """A place for one more container of ``wanting``: a free one, or that of another
        pool's longest idle container beyond its ``min_warm`` (destroyed here), or the
        first one given back."""
        async with self._changed:
            while self.used >= self.limit:
                victim = self._evict(wanting)
                if victim is not None:
                    break
                self._waiting += 1
                try:
                    await self._changed.wait()
                finally:
                    self._waiting -= 1
            else:
                self.used += 1
                return
        instance, idle_since = victim
        log.info("warm containers at their cap (%d): one idle for %.0fs makes room for %s",
                 self.limit, time.monotonic() - idle_since, wanting.name)
        try:
            await instance.destroy()  # its place is the caller's: ``used`` stays
        except Exception as exc:  # the engine failed: the caller's start goes on
            log.warning("an evicted idle container was not removed: %r", exc)

    async def idle_again(self) -> None:
        """An instance went idle: a pool waiting for a place may take it."""
        if self._waiting:
            async with self._changed:
                self._changed.notify_all()

    def _evict(self, wanting: FunctionPool[Any]) -> tuple[Instance, float] | None:
        pools = [p for p in self._pools if p is not wanting and p.evictable]
        if not pools:
            return None
        return min(pools, key=lambda p: p.idle_since).evict()

    async def give_back(self) -> None:
        async with self._changed:
            self.used -= 1
            self._changed.notify_all()


class FunctionPool(Generic[I]):
    def __init__(
        self,
        name: str,
        start: Callable[[], Awaitable[I]],
        capacity: Capacity,
        *,
        max_size: int,
        min_warm: int = 0,
        idle_timeout_s: float = 300.0,
    ) -> None:
        self.name = name
        self._start = start
        self._capacity = capacity
        self.max_size = max_size
        self.min_warm = min(min_warm, max_size)
        self.idle_timeout_s = idle_timeout_s
        self._idle: deque[_Idle[I]] = deque()
        self._busy = 0
        self._starting = 0
        self._draining = False
        self._changed = asyncio.Condition()
        capacity.share(self)

    @property
    def size(self) -> int:
        return len(self._idle) + self._busy + self._starting

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def acquire(self) -> tuple[I, bool]:
        """An instance for one call, and whether it was started for it (a cold start).
        Waits when the pool is at its bound."""
        async with self._changed:
            while True:
                if self._draining:
                    raise PoolRetired(self.name)
                if self._idle:
                    self._busy += 1
                    return self._idle.pop().instance, False  # most recent: warmest caches
                if self.size < self.max_size:
                    self._starting += 1
                    break
                await self._changed.wait()
        try:
            instance = await self._grow()
        except BaseException:
            async with self._changed:
                self._starting -= 1
                self._changed.notify_all()
            raise
        async with self._changed:
            self._starting -= 1
            self._busy += 1
        return instance, True

    @property
    def evictable(self) -> bool:
        """Whether an idle instance can go to make room for another pool's."""
        return bool(self._idle) and self.size > self.min_warm

    @property
    def idle_since(self) -> float:
        return self._idle[0].since

    def evict(self) -> tuple[I, float]:
        """The longest idle instance, taken out of the pool (synchronously: no await between
        the choice and the removal), and since when it was idle."""
        entry = self._idle.popleft()
        return entry.instance, entry.since

    async def _grow(self) -> I:
        await self._capacity.take(self)
        try:
            return await self._start()
        except BaseException:
            await self._capacity.give_back()
            raise

    async def release(self, instance: I, *, healthy: bool) -> None:
        """Return an instance after a call; an unhealthy one (timed out, crashed) is
        destroyed, and the next caller starts a fresh one."""
        keep = healthy and not self._draining
        async with self._changed:
            self._busy -= 1
            if keep:
                self._idle.append(_Idle(instance))
            self._changed.notify_all()
        if not keep:
            await self._destroy(instance)
        else:
            await self._capacity.idle_again()

    async def _destroy(self, instance: I) -> None:
        try:
            await instance.destroy()
        finally:
            await self._capacity.give_back()

    async def prewarm(self) -> None:
        """Start instances until ``min_warm`` are there."""
        while not self._draining:
            async with self._changed:
                if self.size >= self.min_warm:
                    return
                self._starting += 1
            try:
                instance = await self._grow()
            finally:
                async with self._changed:
                    self._starting -= 1
            async with self._changed:
                added = not self._draining
                if added:
                    self._idle.append(_Idle(instance))
                    self._changed.notify_all()
            if added:
                await self._capacity.idle_again()
                continue
            await self._destroy(instance)  # drained while it started: nobody would reap it

    async def maintain(self) -> None:
        """Reap instances idle past the timeout (keeping ``min_warm``), replace idle ones
        that fail their health check, then prewarm back to ``min_warm``."""
        now = time.monotonic()
        async with self._changed:
            candidates = list(self._idle)
        for entry in candidates:
            expired = now - entry.since > self.idle_timeout_s and self.size > self.min_warm
            if not expired and now - entry.checked < HEALTHY_FOR_S:
                continue
            if not expired and await entry.instance.healthy():
                entry.checked = now
                continue
            async with self._changed:
                if entry not in self._idle:
                    continue  # taken meanwhile
                self._idle.remove(entry)
            log.info("pool %s: %s an idle instance", self.name,
                     "reaping" if expired else "replacing unhealthy")
            await self._destroy(entry.instance)
        await self.prewarm()

    async def drain(self) -> None:
        """Retire the pool (a redeploy replaced it): idle instances go now, busy ones when
        their call returns."""
        self._draining = True
        async with self._changed:
            idle = [entry.instance for entry in self._idle]
            self._idle.clear()
            self._changed.notify_all()
        await asyncio.gather(*(self._destroy(i) for i in idle))
