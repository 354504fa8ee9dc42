"""Following the index as Results land, for live views (the dashboard's tail).

One poller per index reads the rows written since its last look (``queries.changes``)
every ``POLL_S`` and hands them to every follower; it runs only while someone follows, so
a hundred open browsers cost one indexed statement twice a second, and none cost nothing.
Polling the file, rather than hooking the writer, works the same in a gateway process
that only reads the index.

A page shows what the index held when it was queried, and opens its tail a moment later: a
row that changed in between (a run that was ``running`` on the page, and ended) would stay
as the page showed it. So a follower may start from a change (``after``, read before the
page's query): it gets the rows written since then first, and then the poller's batches —
those the poller read before that catch-up ended are left out, as the catch-up read their
rows in a newer state (or the same), and a row must never go back to an older one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from pipeline.index.rows import Row

log = logging.getLogger(__name__)

POLL_S = 0.5
BACKLOG = 64  # batches a follower may fall behind by; beyond, it misses rows

Changes = Callable[[int], Awaitable[tuple[int, list[Row]]]]  # after → (read on from, rows)


class _Follower:
    """One follower's queue, and the batches it takes: while it catches up, they are held;
    then only those that end past the change its catch-up reached."""

    def __init__(self, catching_up: bool) -> None:
        self.queue: asyncio.Queue[list[Row]] = asyncio.Queue(BACKLOG)
        self._held: list[tuple[int, list[Row]]] | None = [] if catching_up else None
        self._after = -1

    def offer(self, end: int, rows: list[Row]) -> None:
        if self._held is not None:
            self._held.append((end, rows))
        elif end > self._after:
            self._put(rows)

    def caught_up(self, end: int, batches: list[list[Row]]) -> None:
        for rows in batches:
            self._put(rows)
        held, self._held, self._after = self._held or [], None, end
        for later, rows in held:
            self.offer(later, rows)

    def _put(self, rows: list[Row]) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # that follower misses them
            self.queue.put_nowait(rows)


class Tail:
    def __init__(self, changes: Changes, every_s: float = POLL_S) -> None:
        self._changes = changes
        self._every_s = every_s
        self._followers: set[_Follower] = set()
        self._poller: asyncio.Task[None] | None = None

    @property
    def following(self) -> int:
        return len(self._followers)

    async def change(self) -> int:
        """The latest change: where a tail that starts now would start (``after``)."""
        at, _ = await self._changes(-1)
        return at

    @contextlib.asynccontextmanager
    async def follow(self, after: int | None = None) -> AsyncIterator[asyncio.Queue[list[Row]]]:
        """A queue of the batches of rows written from now on, until the block is left;
        ``after`` a ``change``, the rows written since that change first."""
        follower = _Follower(catching_up=after is not None)
        self._followers.add(follower)
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll(), name="index-tail")
        try:
            if after is not None:
                try:
                    follower.caught_up(*await self._since(after))
                except Exception:  # as a poll that fails: follow on from now
                    log.exception("index tail: reading the changes after %d failed", after)
                    follower.caught_up(-1, [])
            yield follower.queue
        finally:
            self._followers.discard(follower)
            if not self._followers:
                await self.stop()

    async def _since(self, since: int) -> tuple[int, list[list[Row]]]:
        """The batches written since change ``since`` (at most ``BACKLOG`` of them: as many
        as a follower may hold), and the change they reach."""
        at = since
        batches: list[list[Row]] = []
        while len(batches) < BACKLOG:
            at, rows = await self._changes(at)
            if not rows:
                break
            batches.append(rows)
        return at, batches

    async def stop(self) -> None:
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)

    async def _poll(self) -> None:
        at = -1
        while True:
            try:
                at, rows = await self._changes(at)
            except Exception:  # a file being replaced, say: the next turn reads on
                log.exception("index tail: reading changes failed")
                rows = []
            if rows:
                for follower in self._followers:
                    follower.offer(at, rows)
            await asyncio.sleep(self._every_s)
