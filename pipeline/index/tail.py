"""Following the index as Results land, for live views (the dashboard's tail).

One poller per index reads the rows written since its last look (``queries.changes``)
every ``POLL_S`` and hands them to every follower; it runs only while someone follows, so
a hundred open browsers cost one indexed statement twice a second, and none cost nothing.
Polling the file, rather than hooking the writer, works the same in a gateway process
that only reads the index.
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


class Tail:
    def __init__(self, changes: Changes, every_s: float = POLL_S) -> None:
        self._changes = changes
        self._every_s = every_s
        self._followers: set[asyncio.Queue[list[Row]]] = set()
        self._poller: asyncio.Task[None] | None = None

    @property
    def following(self) -> int:
        return len(self._followers)

    @contextlib.asynccontextmanager
    async def follow(self) -> AsyncIterator[asyncio.Queue[list[Row]]]:
        """A queue of the batches of rows written from now on, until the block is left."""
        queue: asyncio.Queue[list[Row]] = asyncio.Queue(BACKLOG)
        self._followers.add(queue)
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll(), name="index-tail")
        try:
            yield queue
        finally:
            self._followers.discard(queue)
            if not self._followers:
                await self.stop()

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
                for queue in self._followers:
                    with contextlib.suppress(asyncio.QueueFull):  # that follower misses them
                        queue.put_nowait(rows)
            await asyncio.sleep(self._every_s)
