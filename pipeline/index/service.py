"""``ResultsIndex``: the gateway's index of invocations, kept in a SQLite file that it
materializes from the compacted results and callbacks topics, resuming from the offsets it
stored; whole Results (outputs, logs) are read from the results topic when asked for.

The file has one writer: of the gateway processes sharing it (``pipeline.gateway.processes``)
the one holding its lock (``<file>.lock``, an ``flock`` the kernel drops when the holder
dies) materializes it; the others read it (WAL: readers never wait for the writer), try
the lock every ``TAKEOVER_S``, and the first to get it takes over from the offsets stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from pipeline.batches import outcomes
from pipeline.cli.processes import Lock
from pipeline.errors import BrokerUnavailable, NotFound
from pipeline.index import queries, tally
from pipeline.index.rows import Page, Query, ReplaySummary, Row
from pipeline.index.store import IndexStore, connect
from pipeline.index.tail import Tail
from pipeline.index.tally import Tally
from pipeline.kafka.fetch import Fetcher
from pipeline.kafka.stored import Entry, StoredView
from pipeline.records import Position, Result, strict_loads
from pipeline.settings import Settings
from pipeline.topics import Topics

log = logging.getLogger(__name__)

T = TypeVar("T")
CACHE_RESULTS = 256
CACHE_BYTES = 16 * 1024 * 1024
LOCAL_RESULTS = 1024
TAKEOVER_S = 1.0  # how often a reader tries the writer's lock
READ_POLL_S = 0.02  # how often a reader waiting for the writer looks at the file
START_TIMEOUT_S = 600.0  # as a view's first read of a long topic
TAIL_BATCH = 500  # rows a tail reads at a time


class _OffLoop:
    """The store's connection used on one thread of its own (SQLite connections are not
    to be shared between threads at once): the ``Store`` the views write to."""

    def __init__(self, store: IndexStore, thread: ThreadPoolExecutor) -> None:
        self._store = store
        self._thread = thread

    async def positions(self, topic: str) -> dict[int, int]:
        return await self._run(self._store.positions, topic)

    async def apply(self, topic: str, partition: int, entries: Sequence[Entry]) -> int:
        return await self._run(self._store.apply, topic, partition, entries)

    async def clear(self, topic: str) -> None:
        await self._run(self._store.clear, topic)

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, call, *args)


class ResultsIndex:
    """Invocations by id, event, function, status, source, time and replay.

    Lookups by id and by event read the file on the event loop (one indexed statement
    each, tens of microseconds); pages run on a thread of their own, and
    ``replay_summary``, which scans a replay, on another. Whole Results
    come from the results topic at the position the index holds, through a small cache; a
    synchronous invocation's Result is served from memory until the index has it.
    """

    def __init__(self, settings: Settings, path: Path | None = None) -> None:
        self._settings = settings
        self.topics = Topics(settings.kafka)
        self.path = path or settings.index_path
        self._lock = Lock(self.path.with_name(f"{self.path.name}.lock"))
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="index")
        self._pages = ThreadPoolExecutor(1, thread_name_prefix="index-pages")
        self._fetcher = Fetcher(settings.kafka)
        self._cache: OrderedDict[Position, Result] = OrderedDict()
        self._cached_bytes = 0
        self._local: OrderedDict[str, Result] = OrderedDict()
        self._store: IndexStore | None = None  # while this process is the writer
        self._inode = 0
        self._follower: asyncio.Task[None] | None = None
        self.views: list[StoredView] = []
        self.tail = Tail(self._changes)

    @property
    def writer(self) -> bool:
        return self._store is not None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await self._fetcher.start()
        if self._lock.acquire():
            await self._materialize()
            return
        await self._open_readers()
        ends = await self._fetcher.ends(self.topics.results)
        await self._read_up_to(ends, START_TIMEOUT_S)
        if not self.writer:
            self._follower = asyncio.create_task(self._follow_writer(), name="index-reader")
        log.info("results index %s: read here, written by another process", self.path)

    async def _materialize(self) -> None:
        """Become the writer: open (or rebuild) the file, feed it from the topics."""
        loop = asyncio.get_running_loop()
        store = await loop.run_in_executor(
            self._thread, IndexStore, self.path, self.topics.results, self.topics.callbacks)
        writer = _OffLoop(store, self._thread)
        results_view = StoredView(self._settings.kafka, self.topics.results, writer)
        callbacks_view = StoredView(self._settings.kafka, self.topics.callbacks, writer)
        started: list[StoredView] = []
        try:
            await self._open_readers()
            for view in (results_view, callbacks_view):
                await view.start()
                started.append(view)
        except BaseException:  # a reader tries again on its next turn
            for view in started:
                await view.stop()
            await loop.run_in_executor(self._thread, store.close)
            raise
        self._store, self.results_view = store, results_view
        self.views.extend(started)
        log.info("results index %s: %d records read at start", self.path,
                 self.results_view.read)

    async def _open_readers(self) -> None:
        """(Re)open the reader connections, on the file now at ``path`` (a writer that
        rebuilds it replaces it). The new ones are in place before the old ones close: a
        query that took an old one meanwhile runs before its close, on the same thread."""
        old = [getattr(self, name) for name in ("_db", "_pages_db") if hasattr(self, name)]
        self._inode = self.path.stat().st_ino if self.path.exists() else 0
        self._db = connect(self.path, readonly=True)
        self._pages_db = connect(self.path, readonly=True)
        for db in old:
            await self._close_reader(db)

    async def _close_reader(self, db: sqlite3.Connection) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pages, db.close)

    async def _follow_writer(self) -> None:
        """A reader's: take over when the writer is gone; follow a rebuilt file."""
        while True:
            await asyncio.sleep(TAKEOVER_S)
            try:
                if self._lock.acquire():
                    log.warning("results index %s: its writer is gone; writing it here",
                                self.path)
                    await self._materialize()
                    return
                if self.path.exists() and self.path.stat().st_ino != self._inode:
                    await self._open_readers()
            except Exception:  # the next turn tries again; queries answer meanwhile
                log.exception("results index %s: reader upkeep failed", self.path)

    def _stored_positions(self) -> dict[int, int] | None:
        """The next offset per partition of the results topic, as the file holds them;
        None before the writer made the file's tables."""
        try:
            return dict(self._db.execute(  # type: ignore[arg-type]
                "SELECT partition, next FROM offsets WHERE topic = ?", (self.topics.results,)))
        except sqlite3.OperationalError:
            return None

    async def _read_up_to(self, ends: dict[int, int], timeout_s: float) -> None:
        """Wait until the file holds the results topic up to ``ends``; a reader that gets
        the lock meanwhile becomes the writer and reads on itself."""
        def caught_up() -> bool:
            stored = self._stored_positions()
            return stored is not None and all(stored.get(p, 0) >= end
                                              for p, end in ends.items() if end)

        deadline = asyncio.get_running_loop().time() + timeout_s
        while not caught_up():
            if self.writer:
                await self.results_view.sync()
                return
            if asyncio.get_running_loop().time() > deadline:
                raise BrokerUnavailable(f"results index {self.path}: its writer did not "
                                        f"read {self.topics.results} up to its end within "
                                        f"{timeout_s:g}s")
            await asyncio.sleep(READ_POLL_S)
            if self._lock.acquire():
                await self._materialize()

    async def stop(self) -> None:
        await self.tail.stop()
        if self._follower is not None:
            self._follower.cancel()
            await asyncio.gather(self._follower, return_exceptions=True)
        for view in self.views:
            await view.stop()
        await self._fetcher.stop()
        self._db.close()
        await self._close_reader(self._pages_db)
        if self._store is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._store.close)
        self._thread.shutdown()
        self._pages.shutdown()
        self._lock.release()

    async def stats(self) -> dict[str, Any]:
        """What the index holds and what it read since this process started it."""
        count = await asyncio.get_running_loop().run_in_executor(
            self._pages, queries.count, self._pages_db)
        rebuilt = self._store.rebuilt if self._store is not None else None
        return {"path": str(self.path), "invocations": count, "process": os.getpid(),
                "writer": self.writer,
                "read": {v.topic: v.read for v in self.views},
                "skipped": {v.topic: v.skipped for v in self.views},
                "rebuilt": "; ".join(why for why in (rebuilt, *(v.rebuilt for v in self.views))
                                     if why) or None}

    async def counts(self) -> dict[str, int]:
        """Invocations by function (``queries.counts_by_function``)."""
        return await asyncio.get_running_loop().run_in_executor(
            self._pages, queries.counts_by_function, self._pages_db)

    async def tally(self) -> Tally:
        """The totals of the Results that ended, by function (``pipeline.index.tally``)."""
        return await asyncio.get_running_loop().run_in_executor(
            self._pages, tally.read, self._pages_db)

    # rows

    def row(self, ident: str) -> Row | None:
        return queries.find(self._db, ident)

    def rows_for_event(self, event_id: str) -> list[Row]:
        return queries.for_event(self._db, event_id)

    async def page(self, query: Query) -> Page:
        """On a thread of its own: a page reads at most ``limit`` rows, but through
        whichever index SQLite picks for the filters given together."""
        return await asyncio.get_running_loop().run_in_executor(
            self._pages, queries.page, self._pages_db, query)

    async def _changes(self, after: int) -> tuple[int, list[Row]]:
        """``queries.changes``, for ``tail``: on the pages' thread."""
        return await asyncio.get_running_loop().run_in_executor(
            self._pages, queries.changes, self._pages_db, after, TAIL_BATCH)

    def callbacks(self, ident: str) -> list[dict[str, Any]]:
        return queries.callbacks(self._db, ident)

    async def replay_summary(self, replay_id: str, compare_with: str | None = None,
                             examples: int = 5) -> ReplaySummary:
        """See ``queries.replay_summary``; on a thread and a connection of its own, since
        it reads every invocation of the replay."""

        def summarize() -> ReplaySummary:
            db = connect(self.path, readonly=True)
            try:
                return queries.replay_summary(db, replay_id, compare_with, examples)
            finally:
                db.close()

        return await asyncio.to_thread(summarize)

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Wait at most ``timeout_s`` for ``predicate`` to hold after an applied batch (a
        reader looks at the file every ``READ_POLL_S``)."""
        if self.writer:
            return await self.results_view.wait_until(predicate, timeout_s)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(READ_POLL_S)
        return True

    async def sync(self) -> None:
        """Read barrier: returns once the index holds what the results topic held when
        called; ``BrokerUnavailable`` when that cannot be known or takes too long."""
        if self.writer:
            await self.results_view.sync()
            return
        ends = await self._fetcher.ends(self.topics.results)
        await self._read_up_to(ends, self._settings.kafka.publish_timeout_s * 10)

    # whole Results

    def remember(self, result: Result) -> None:
        """A Result this process just made and is logging: served until indexed."""
        self._local[result.invocation_id] = result
        while len(self._local) > LOCAL_RESULTS:
            self._local.popitem(last=False)

    async def get(self, ident: str) -> Result:
        """The invocation's latest Result; ``NotFound`` if the index does not know it."""
        row = self.row(ident)
        if row is None and ident in self._local:
            return self._local[ident]
        if row is None:  # perhaps another gateway process's synchronous call, being indexed
            with contextlib.suppress(BrokerUnavailable):
                await self.sync()
            row = self.row(ident)
        if row is None:
            raise NotFound(f"invocation {ident!r} does not exist")
        self._local.pop(ident, None)
        return await self.result(row)

    async def results(self, rows: Sequence[Row]) -> list[Result]:
        return [await self.result(row) for row in rows]

    async def result(self, row: Row) -> Result:
        """``row``'s whole Result, from the results topic (or the cache); an event of a
        batch gets its view of the batch's Result (``batches.outcomes``)."""
        for _ in range(3):
            cached = self._cache.get(row.position)
            if cached is not None:
                self._cache.move_to_end(row.position)
                return outcomes.seen_as(cached, row.invocation_id)
            record = await self._fetcher.fetch(self.topics.results, row.position.partition,
                                               row.position.offset)
            if record is not None and record[1] == row.position.offset and record[3]:
                result = Result.from_dict(strict_loads(record[3]))
                self._keep(row.position, result)
                return outcomes.seen_as(result, row.invocation_id)
            # compacted away since: a newer record of the key exists; the index will have it
            await self.sync()
            newer = self.row(row.invocation_id)
            if newer is None:
                raise NotFound(f"invocation {row.invocation_id!r} does not exist")
            row = newer
        raise BrokerUnavailable(f"invocation {row.invocation_id!r}: its Result could not be "
                                f"read at {self.topics.results}[{row.position.partition}]")

    def _keep(self, position: Position, result: Result) -> None:
        self._cache[position] = result
        self._cached_bytes += len(result.output) + len(result.logs)
        while len(self._cache) > CACHE_RESULTS or self._cached_bytes > CACHE_BYTES:
            _, old = self._cache.popitem(last=False)
            self._cached_bytes -= len(old.output) + len(old.logs)

    async def event(self, rows: Sequence[Row]) -> dict[str, Any] | None:
        """The event of ``rows`` (one event's invocations) as its source's topic holds it
        (CloudEvents JSON), or None when none of them says where it lies."""
        for row in rows:
            if row.event_position is None or not row.source:
                continue
            at = row.event_position
            record = await self._fetcher.fetch(self.topics.events(row.source), at.partition,
                                               at.offset)
            if record is not None and record[1] == at.offset and record[3]:
                found: dict[str, Any] = strict_loads(record[3])
                return found
        return None
