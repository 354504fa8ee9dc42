"""The questions the index answers, each a few indexed statements on a reader connection."""

from __future__ import annotations

import sqlite3
from typing import Any

from pipeline.index.rows import Cursor, Page, Query, ReplaySummary, Row
from pipeline.index.store import QUOTED, from_columns
from pipeline.records import Status, strict_loads

SELECT = f"SELECT {QUOTED} FROM invocations"
FINAL = tuple(s.value for s in Status if s.final)


def find(db: sqlite3.Connection, ident: str) -> Row | None:
    found = db.execute(f"{SELECT} WHERE id = ?", (ident,)).fetchone()
    return None if found is None else from_columns(found)


def for_event(db: sqlite3.Connection, event_id: str) -> list[Row]:
    """The event's invocations, by function then id."""
    return [from_columns(c) for c in db.execute(
        f"{SELECT} WHERE event_id = ? ORDER BY function, id", (event_id,))]


def page(db: sqlite3.Connection, query: Query) -> Page:
    where: list[str] = []
    args: list[Any] = []
    for column in ("function", "status", "source"):
        if getattr(query, column) is not None:
            where.append(f"{column} = ?")
            args.append(getattr(query, column))
    if query.since is not None:
        where.append("queued_at >= ?")
        args.append(query.since)
    if query.until is not None:
        where.append("queued_at < ?")
        args.append(query.until)
    if query.after is not None:
        where.append("(queued_at, id) < (?, ?)")
        args += [query.after.queued_at, query.after.invocation_id]
    sql = (f"{SELECT} {'WHERE ' + ' AND '.join(where) if where else ''} "
           "ORDER BY queued_at DESC, id DESC LIMIT ?")
    rows = [from_columns(c) for c in db.execute(sql, (*args, query.limit + 1))]
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    last = rows[-1] if more else None
    return Page(rows, Cursor(last.queued_at, last.invocation_id).encode() if last else None)


def changes(db: sqlite3.Connection, after: int, limit: int) -> tuple[int, list[Row]]:
    """The rows written since change ``after``, oldest first, at most ``limit``, and the
    change to read on from. A change is a row's rowid: a newer record of a key replaces its
    row, which gets the next rowid, so rowids grow with every write. ``after`` below 0, or
    above the last rowid (the file was started over): nothing, and where the file is now."""
    (last,) = db.execute("SELECT coalesce(max(rowid), 0) FROM invocations").fetchone()
    if after < 0 or after > last:
        return int(last), []
    found = db.execute(f"SELECT rowid, {QUOTED} FROM invocations WHERE rowid > ? "
                       "ORDER BY rowid LIMIT ?", (after, limit)).fetchall()
    return (int(found[-1][0]) if found else after), [from_columns(c[1:]) for c in found]


def callbacks(db: sqlite3.Connection, ident: str) -> list[dict[str, Any]]:
    """The invocation's callback deliveries (one per target), by target id."""
    return [strict_loads(value) for (value,) in db.execute(
        "SELECT value FROM callbacks WHERE invocation_id = ? ORDER BY target_id", (ident,))]


def count(db: sqlite3.Connection) -> int:
    (n,) = db.execute("SELECT count(*) FROM invocations").fetchone()
    return int(n)


def counts_by_function(db: sqlite3.Connection) -> dict[str, int]:
    """Each function's invocations, shadow runs of replays left out."""
    return {function: int(n) for function, n in db.execute(
        "SELECT function, count(*) FROM invocations WHERE shadow = 0 GROUP BY function")}


def replay_summary(db: sqlite3.Connection, replay_id: str, compare_with: str | None,
                   examples: int) -> ReplaySummary:
    """The replay's invocations by status; with ``compare_with`` (function G), each final
    one against the original: G's Result for the same (source, event id) outside any
    replay. ``same``/``different``: both succeeded, with equal/unequal outputs (by SHA-256);
    ``failed``: either did not succeed; ``missing``: G has no Result for that event.
    ``examples``: the first ``different`` ones by queued time, as (event id, replayed
    invocation id, original invocation id)."""
    statuses = {status: int(n) for status, n in db.execute(
        "SELECT status, count(*) FROM invocations WHERE replay_id = ? GROUP BY status",
        (replay_id,))}
    summary = ReplaySummary(statuses=statuses,
                            final=sum(n for s, n in statuses.items() if s in FINAL))
    if compare_with is None:
        return summary
    pairs = f"""
        SELECT r.event_id, r.id, o.id AS original,
               CASE WHEN o.id IS NULL THEN 'missing'
                    WHEN r.status != 'succeeded' OR o.status != 'succeeded' THEN 'failed'
                    WHEN r.output_sha256 = o.output_sha256 THEN 'same'
                    ELSE 'different' END AS verdict,
               r.queued_at
        FROM invocations r
        LEFT JOIN invocations o ON o.event_id = r.event_id AND o.source = r.source
             AND o.function = ? AND o.replay_id = ''
        WHERE r.replay_id = ? AND r.status IN ({', '.join('?' * len(FINAL))})"""
    args = (compare_with, replay_id, *FINAL)
    verdicts = dict(db.execute(f"SELECT verdict, count(*) FROM ({pairs}) GROUP BY verdict",
                               args))
    first = db.execute(f"SELECT event_id, id, original FROM ({pairs}) "
                       "WHERE verdict = 'different' ORDER BY queued_at, id LIMIT ?",
                       (*args, examples)).fetchall()
    return ReplaySummary(statuses=summary.statuses, final=summary.final,
                         same=verdicts.get("same", 0), different=verdicts.get("different", 0),
                         failed=verdicts.get("failed", 0), missing=verdicts.get("missing", 0),
                         examples=[(e, r, o) for e, r, o in first])
