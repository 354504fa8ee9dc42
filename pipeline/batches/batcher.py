"""Gathering events into batches: one open batch per (subscription, topic partition).

A batch closes when it holds ``batch_size`` events, when one more would not fit its room
(``Pending.size``), or ``batch_window_ms`` after its first event; closing it hands it to
``flush`` (which queues its invocation). ``add`` returns only once the batch holding the
event is flushed, so that the caller acknowledges the event then and not before: a worker
that dies with batches open or flushing has acknowledged none of their events, and whoever
gets the partition gathers them again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from pipeline.batches.assembly import Pending
from pipeline.specs import Subscription

Flush = Callable[[Subscription, str, list[Pending]], Awaitable[None]]
Key = tuple[str, str, int]  # subscription id, topic, partition


class _Open:
    def __init__(self, subscription: Subscription, source: str) -> None:
        self.subscription = subscription
        self.source = source
        self.pending: list[Pending] = []
        self.bytes = 0
        self.flushed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.timer: asyncio.TimerHandle | None = None


class Batcher:
    def __init__(self, flush: Flush, room: int) -> None:
        self._flush = flush
        self._room = room
        self._open: dict[Key, _Open] = {}
        self._flushing: set[asyncio.Task[None]] = set()
        self._last: dict[Key, asyncio.Task[None]] = {}  # an ordered key's latest flush

    async def add(self, subscription: Subscription, source: str, pending: Pending) -> None:
        """Put ``pending`` in its batch and return once that batch is flushed (or raise what
        flushing it raised). Cancelled while its batch is still open, the event leaves it."""
        key = (subscription.id, pending.origin.topic, pending.origin.partition)
        batch = self._open.get(key)
        if batch is not None and batch.bytes + pending.size > self._room:
            self._close(key, batch)
            batch = None
        if batch is None:
            batch = self._open[key] = _Open(subscription, source)
            batch.timer = asyncio.get_running_loop().call_later(
                subscription.batching.window_ms / 1000, self._close, key, batch)
        batch.pending.append(pending)
        batch.bytes += pending.size
        if len(batch.pending) >= subscription.batching.size:
            self._close(key, batch)
        try:
            await asyncio.shield(batch.flushed)
        except asyncio.CancelledError:
            if self._open.get(key) is batch:
                batch.pending.remove(pending)
                batch.bytes -= pending.size
            raise

    def _close(self, key: Key, batch: _Open) -> None:
        if self._open.get(key) is batch:
            del self._open[key]
        if batch.timer is not None:
            batch.timer.cancel()
        before = self._last.get(key) if batch.subscription.batching.ordered else None
        task = asyncio.create_task(self._run(batch, before))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)
        if batch.subscription.batching.ordered:
            self._last[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))

    def _forget(self, key: Key, task: asyncio.Task[None]) -> None:
        if self._last.get(key) is task:
            del self._last[key]

    async def _run(self, batch: _Open, before: asyncio.Task[None] | None) -> None:
        """Flush ``batch`` (after ``before``: an ordered subscription's batches of one
        partition are queued one after the other, in offset order)."""
        try:
            if before is not None:
                await asyncio.wait([before])
            if batch.pending:
                await self._flush(batch.subscription, batch.source, batch.pending)
        except asyncio.CancelledError:
            batch.flushed.cancel()
            raise
        except Exception as exc:
            batch.flushed.set_exception(exc)
            batch.flushed.exception()  # its events' tasks raise it; none may be left
        else:
            batch.flushed.set_result(None)

    async def close(self) -> None:
        """Stop: open batches are dropped, flushes in flight cancelled (their events were
        not acknowledged)."""
        for batch in self._open.values():
            if batch.timer is not None:
                batch.timer.cancel()
            batch.flushed.cancel()
        self._open.clear()
        for task in list(self._flushing):
            task.cancel()
        await asyncio.gather(*self._flushing, return_exceptions=True)
