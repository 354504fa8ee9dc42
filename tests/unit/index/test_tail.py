"""The index's tail: the rows written since a change, in write order, one poller shared by
every follower that stops with the last of them."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from pipeline.index import queries
from pipeline.index.rows import Query, Row
from pipeline.index.store import IndexStore
from pipeline.index.tail import Tail
from pipeline.records import Position, Status
from tests.unit.index.records import Log, result


def test_changes_are_the_rows_written_since_in_write_order(store: IndexStore) -> None:
    log, db = Log(store), store.reader()
    log.put(result("a"), result("b"))
    now, seen = queries.changes(db, -1, 10)
    assert seen == []  # a tail starts where the file is
    log.put(result("c", status=Status.RUNNING), result("a", status=Status.FAILED))
    at, rows = queries.changes(db, now, 10)
    assert [(r.invocation_id, r.status) for r in rows] == [("c", "running"), ("a", "failed")]
    log.put(result("c"))  # a key written again is a change again
    again, rows = queries.changes(db, at, 1)
    assert [(r.invocation_id, r.status) for r in rows] == [("c", "succeeded")]
    assert queries.changes(db, again, 10) == (again, [])
    db.close()


def test_changes_after_a_file_started_over_read_on_from_its_end(store: IndexStore) -> None:
    db = store.reader()
    Log(store).put(result("a"))
    assert queries.changes(db, 1000, 10) == (1, [])
    db.close()


def test_a_query_admits_the_rows_its_filters_let_through() -> None:
    row = Row.of(result("a", function="f", source="s", minute=5),
                 Position(0, 0))
    assert Query().admits(row)
    assert Query(function="f", status="succeeded", source="s").admits(row)
    assert not Query(function="g").admits(row)
    assert not Query(status="failed").admits(row)
    assert not Query(since="2026-01-01T00:06:00.000000Z").admits(row)
    assert not Query(until="2026-01-01T00:05:00.000000Z").admits(row)


async def test_one_poller_feeds_every_follower_and_stops_with_the_last() -> None:
    row = Row.of(result("a"), Position(0, 0))
    calls: list[int] = []

    async def changes(after: int) -> tuple[int, list[Row]]:
        calls.append(after)
        return (1, []) if after < 0 else (after + 1, [row])

    tail = Tail(changes, every_s=0.01)
    async with tail.follow() as first, tail.follow() as second:
        assert await asyncio.wait_for(first.get(), 1) == [row]
        assert await asyncio.wait_for(second.get(), 1) == [row]
        assert await asyncio.wait_for(first.get(), 1) == [row]
        assert calls[:3] == [-1, 1, 2]  # one cursor, one poller
        assert tail.following == 2
    assert tail.following == 0
    polled = len(calls)
    await asyncio.sleep(0.05)
    assert len(calls) == polled  # nobody follows: nothing polls


async def test_a_failing_read_does_not_end_the_tail(caplog: pytest.LogCaptureFixture) -> None:
    row = Row.of(result("a"), Position(0, 0))
    failures = iter([True, False])

    async def changes(after: int) -> tuple[int, list[Row]]:
        if next(failures, False):
            raise sqlite3.OperationalError("database is locked")
        return after + 1, [row]

    tail = Tail(changes, every_s=0.01)
    async with tail.follow() as queue:
        assert await asyncio.wait_for(queue.get(), 1) == [row]
    assert "reading changes failed" in caplog.text


async def test_a_follower_since_a_change_gets_what_changed_after_it_first() -> None:
    """A page is queried, a row changes, then the page's tail starts: it gets the change."""
    rows = [Row.of(result(ident, status=status), Position(0, 0))
            for ident, status in (("a", Status.RUNNING), ("a", Status.SUCCEEDED))]
    written: list[Row] = []

    async def changes(after: int) -> tuple[int, list[Row]]:
        last = len(written)
        if after < 0 or after > last:
            return last, []
        return last, written[after:]

    tail = Tail(changes, every_s=0.01)
    written.append(rows[0])
    since = await tail.change()  # the page reads it, then queries: "a" is running
    written.append(rows[1])  # "a" ends before the page's tail starts
    async with tail.follow(after=since) as queue:
        assert await asyncio.wait_for(queue.get(), 1) == [rows[1]]
        written.append(rows[0])  # (a row changing again reaches it too)
        assert await asyncio.wait_for(queue.get(), 1) == [rows[0]]
    async with tail.follow() as queue:  # without ``after``: from now on only
        await asyncio.sleep(0.05)
        assert queue.empty()


async def test_batches_read_before_a_catch_up_ended_are_left_out() -> None:
    """The poller's batch read before the catch-up ended holds a row in an older state:
    sent after the catch-up, it would take the row back to it."""
    running = Row.of(result("a", status=Status.RUNNING), Position(0, 0))
    ended = Row.of(result("a", status=Status.SUCCEEDED), Position(0, 0))
    polled = asyncio.Event()

    async def changes(after: int) -> tuple[int, list[Row]]:
        if after == -1:  # the poller starts where the file is
            return 1, []
        if after == 0:  # the follower's catch-up ends once the poller read "a" running
            await polled.wait()
            return 3, [ended]  # "a" ended since: its row is written again, at change 3
        if after == 1:
            polled.set()
            return 2, [running]
        return 3, []

    tail = Tail(changes, every_s=0.01)
    async with tail.follow(after=0) as queue:
        assert await asyncio.wait_for(queue.get(), 1) == [ended]
        await asyncio.sleep(0.05)
        assert queue.empty(), "the older batch was sent after the catch-up"
