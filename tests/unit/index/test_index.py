"""The index file: applying records with their offsets, tombstones, queries, cursors,
the replay summary, and starting over when the file is not ours."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import sqlite3
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pipeline.errors import InvalidRequest
from pipeline.index import queries
from pipeline.index.rows import ERROR_CHARS, Cursor, Page, Query, timestamp
from pipeline.index.service import ResultsIndex
from pipeline.index.store import IndexStore
from pipeline.kafka.stored import stale
from pipeline.records import Position, Status, dumps
from pipeline.settings import Settings
from tests.unit.index.records import CALLBACKS, RESULTS, Log, result


def test_a_row_holds_the_result_and_its_position_but_no_output(log: Log,
                                                               db: sqlite3.Connection) -> None:
    log.put(result("inv-0"), partition=2)
    log.put(result("inv-1", output=b"x" * 10, error="e" * 2000), partition=2)
    row = queries.find(db, "inv-1")
    assert row is not None
    assert row.position == Position(2, 1)
    assert (row.output_size, row.output_sha256) == (10, hashlib.sha256(b"x" * 10).hexdigest())
    assert row.error == "e" * ERROR_CHARS
    assert "output" not in row.to_dict()
    assert "logs" not in row.to_dict()
    assert queries.find(db, "never") is None


def test_offsets_are_stored_with_the_rows(log: Log, store: IndexStore) -> None:
    log.put(result("a"), result("b"), partition=0)
    log.put(result("c"), partition=3)
    assert store.positions(RESULTS) == {0: 2, 3: 1}
    assert store.positions(CALLBACKS) == {}


def test_the_latest_record_of_a_key_wins_and_a_tombstone_deletes(log: Log,
                                                                 db: sqlite3.Connection) -> None:
    log.put(result("inv", status=Status.PENDING), result("gone"))
    log.put(result("inv", status=Status.RUNNING))
    log.put(result("inv", status=Status.FAILED, error="boom"))
    log.delete("gone")
    log.delete("never-was")
    row = queries.find(db, "inv")
    assert row is not None
    assert (row.status, row.error, row.position.offset) == ("failed", "boom", 3)
    assert queries.find(db, "gone") is None
    assert [r.invocation_id for r in queries.for_event(db, "ev-1")] == ["inv"]


def test_unreadable_records_are_skipped_and_counted(log: Log, store: IndexStore,
                                                    db: sqlite3.Connection) -> None:
    skipped = log.write(0, [(None, b"{}"), (b"bad", b"not json"), (b"list", b"[1]"),
                            (b"deep", b"[" * 100_000),  # past the parser's stack
                            (b"ok", dumps(result("ok").to_dict()))])
    assert skipped == 4
    assert queries.count(db) == 1
    assert store.positions(RESULTS) == {0: 5}  # past the bad ones: they are not read again


def test_for_event_lists_its_invocations_by_function(log: Log, db: sqlite3.Connection) -> None:
    log.put(result("z1", function="zip"), result("a1", function="audit"),
            result("other", event_id="ev-2"))
    assert [r.function for r in queries.for_event(db, "ev-1")] == ["audit", "zip"]
    assert queries.for_event(db, "unknown") == []


def test_pages_are_newest_first_and_filtered(log: Log, db: sqlite3.Connection) -> None:
    log.put(*(result(f"inv-{m}", minute=m, function="echo" if m % 2 else "zip",
                     status=Status.FAILED if m % 3 == 0 else Status.SUCCEEDED,
                     source="a" if m < 5 else "b") for m in range(10)))
    assert [r.invocation_id for r in queries.page(db, Query()).rows] == [
        f"inv-{m}" for m in range(9, -1, -1)]
    assert [r.invocation_id for r in queries.page(db, Query(function="echo", status="failed")).rows
            ] == ["inv-9", "inv-3"]
    assert [r.invocation_id for r in queries.page(db, Query(source="a")).rows] == [
        "inv-4", "inv-3", "inv-2", "inv-1", "inv-0"]
    window = Query(since=timestamp(datetime.fromisoformat("2026-01-01T00:02:00Z")),
                   until=timestamp(datetime.fromisoformat("2026-01-01T01:05:00+01:00")))
    assert [r.invocation_id for r in queries.page(db, window).rows] == [
        "inv-4", "inv-3", "inv-2"]


def test_cursors_walk_every_row_once_ties_broken_by_id(log: Log,
                                                       db: sqlite3.Connection) -> None:
    log.put(*(result(f"inv-{n}", minute=n // 3) for n in range(10)))  # three per minute
    seen: list[str] = []
    cursor = None
    while True:
        page = queries.page(db, Query(limit=4, after=cursor and Cursor.decode(cursor)))
        seen += [r.invocation_id for r in page.rows]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == sorted(seen, key=lambda i: (int(i[4:]) // 3, i), reverse=True)
    assert len(set(seen)) == 10


def test_the_last_page_has_no_cursor(log: Log, db: sqlite3.Connection) -> None:
    log.put(result("a", minute=1), result("b", minute=2))
    assert queries.page(db, Query(limit=2)).next_cursor is None
    assert queries.page(db, Query(limit=1)).next_cursor is not None


@pytest.mark.parametrize("token", ["", "!!!", "bm90IGpzb24", "WzEsMl0"])  # -, -, not json, [1,2]
def test_a_cursor_not_given_out_is_refused(token: str) -> None:
    with pytest.raises(InvalidRequest, match="cursor"):
        Cursor.decode(token)


def test_a_cursor_of_deep_brackets_is_refused_even_with_a_raised_recursion_limit() -> None:
    """web3 (imported by the gateway) raises the recursion limit to 100,000; json.loads then
    recursed in C through a cursor of brackets until the gateway crashed (SIGSEGV)."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    try:
        token = base64.urlsafe_b64encode(b"[" * 200_000).decode()
        with pytest.raises(InvalidRequest, match="cursor"):
            Cursor.decode(token)
    finally:
        sys.setrecursionlimit(before)


@pytest.mark.parametrize("limit", [0, -1, 1001])
def test_a_limit_out_of_range_is_refused(limit: int) -> None:
    with pytest.raises(InvalidRequest, match="limit"):
        Query(limit=limit)


def test_times_compare_as_results_write_them() -> None:
    assert timestamp(datetime(2026, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))) == (
        "2026-01-01T00:00:00.000000Z")
    assert timestamp(datetime(2026, 1, 1)) == "2026-01-01T00:00:00.000000Z"  # naive: UTC


def test_callback_deliveries_are_kept_per_target(log: Log, store: IndexStore,
                                                 db: sqlite3.Connection) -> None:
    first = dumps({"target_id": "t1", "state": "pending", "attempts": []})
    done = dumps({"target_id": "t1", "state": "delivered", "attempts": [{"status": 200}]})
    sink = dumps({"target_id": "t2", "kind": "sink", "state": "pending", "attempts": []})
    assert log.write(0, [(b"inv/t1", first), (b"inv/t2", sink), (b"inv/t1", done),
                         (b"inv/t3", b"[]")], topic=CALLBACKS) == 1
    assert [c["state"] for c in queries.callbacks(db, "inv")] == ["delivered", "pending"]
    log.write(0, [(b"inv/t2", None)], topic=CALLBACKS)
    assert [c["target_id"] for c in queries.callbacks(db, "inv")] == ["t1"]
    store.clear(CALLBACKS)
    assert queries.callbacks(db, "inv") == []
    assert store.positions(CALLBACKS) == {}


def test_replay_summary_counts_statuses_and_compares_with_the_originals(
        log: Log, db: sqlite3.Connection) -> None:
    originals = [result(f"g-{n}", function="g", event_id=f"ev-{n}", output=b"same" if n < 3
                        else b"old", status=Status.FAILED if n == 5 else Status.SUCCEEDED)
                 for n in range(6)]
    replayed = [result(f"f-{n}", function="f", event_id=f"ev-{n}", replay_id="r1", minute=n,
                       output=b"same" if n < 3 else b"new",
                       status=Status.TIMEOUT if n == 6 else Status.SUCCEEDED)
                for n in range(8)]  # ev-6 and ev-7: no original
    other_replay = result("g-r2", function="g", event_id="ev-4", replay_id="r2", output=b"new")
    pending = result("f-8", function="f", event_id="ev-8", replay_id="r1",
                     status=Status.RUNNING)
    log.put(*originals, *replayed, other_replay, pending)
    summary = queries.replay_summary(db, "r1", None, 5)
    assert summary.statuses == {"succeeded": 7, "timeout": 1, "running": 1}
    assert (summary.final, summary.same, summary.examples) == (8, 0, [])
    compared = queries.replay_summary(db, "r1", "g", 1)
    assert (compared.same, compared.different, compared.failed, compared.missing) == (3, 2, 1, 2)
    assert compared.examples == [("ev-3", "f-3", "g-3")]
    assert queries.replay_summary(db, "r1", "g", 5).examples == [
        ("ev-3", "f-3", "g-3"), ("ev-4", "f-4", "g-4")]
    assert queries.replay_summary(db, "nothing", "g", 5).to_dict()["final"] == 0


def test_a_foreign_or_damaged_file_is_started_over(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    store = IndexStore(path, RESULTS, CALLBACKS)
    assert store.rebuilt is not None
    assert "unreadable" in store.rebuilt
    Log(store).put(result("kept"))
    store.close()
    again = IndexStore(path, RESULTS, CALLBACKS)
    assert again.rebuilt is None
    assert again.positions(RESULTS) == {0: 1}
    again.close()
    foreign = sqlite3.connect(tmp_path / "foreign.sqlite3")
    foreign.execute("CREATE TABLE notes (text TEXT)")
    foreign.commit()
    foreign.close()
    store = IndexStore(tmp_path / "foreign.sqlite3", RESULTS, CALLBACKS)
    assert store.rebuilt is not None
    assert "not this index" in store.rebuilt
    store.close()


def test_another_schema_version_or_topic_is_started_over(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    store = IndexStore(path, RESULTS, CALLBACKS)
    Log(store).put(result("kept"))
    store._db.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    store.close()
    store = IndexStore(path, RESULTS, CALLBACKS)
    assert store.rebuilt is not None
    assert store.positions(RESULTS) == {}
    Log(store).put(result("kept"))
    store.close()
    other = IndexStore(path, "u.results", "u.callbacks")
    assert other.rebuilt is not None
    assert "topic t.results" in other.rebuilt
    other.close()


def test_stored_positions_outside_the_topic_are_stale() -> None:
    assert stale({}, {0: 0}, {0: 5}) is None
    assert stale({0: 5, 1: 0}, {0: 0, 1: 0}, {0: 5, 1: 9}) is None
    assert "partition 2 no longer exists" in (stale({2: 1}, {0: 0}, {0: 5}) or "")
    assert "outside 0..3" in (stale({0: 5}, {0: 0}, {0: 3}) or "")  # topic recreated
    assert "outside 4..9" in (stale({0: 2}, {0: 4}, {0: 9}) or "")  # records deleted


async def test_a_query_racing_a_reader_reopen_reads_an_open_connection(tmp_path: Path) -> None:
    """A reader reopens its connections when the file is rebuilt or it becomes the writer;
    a page or stats query taken meanwhile must not get a connection closed under it."""
    index = ResultsIndex(Settings(state_dir=tmp_path), tmp_path / "index.sqlite3")
    IndexStore(index.path, index.topics.results, index.topics.callbacks).close()
    await index._open_readers()
    close = index._close_reader
    arrived: list[asyncio.Future[Page]] = []

    async def close_as_a_query_arrives(db: sqlite3.Connection) -> None:
        await close(db)
        arrived.append(asyncio.ensure_future(index.page(Query(limit=10))))

    index._close_reader = close_as_a_query_arrives  # type: ignore[method-assign]
    await index._open_readers()
    index._close_reader = close  # type: ignore[method-assign]
    for page in arrived:
        assert (await page).rows == []
    await index._close_reader(index._db)
    await index._close_reader(index._pages_db)
    await index._fetcher.stop()  # never started: its consumer is let go
