"""Running totals of the Results that ended, per function: what ``/metrics`` and the
dashboard's pulse count, kept by the index's writer in the transaction that applies the
records, so that reading them costs a few rows however long the history.

    finals     (function, status)  Results that ended so, their cold starts, their time
    durations  (function, bucket)  how many of those runs took at most ``BUCKETS[bucket]``

A Result is counted when its row enters a final status it did not have: an invocation
redriven after it failed counts once failed and once as it ended again, so the totals only
grow (Prometheus counters). The index counts Results, not events: a batch's Result is one
run, its events' rows are views of it and are not counted again. Shadow runs of replays
are not counted either (they are the replay's, not the function's traffic). Rebuilding the
index starts the totals over from what the compacted topic holds: a counter reset.

Changing ``BUCKETS`` changes what the stored counts mean: the schema version goes up with it.
"""

from __future__ import annotations

import sqlite3
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import accumulate

from pipeline.index.rows import Row
from pipeline.records import Status

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
FINAL = frozenset(s.value for s in Status if s.final)
SCHEMA = """
CREATE TABLE finals (function TEXT NOT NULL, status TEXT NOT NULL, count INTEGER NOT NULL,
                     cold_starts INTEGER NOT NULL, duration_sum REAL NOT NULL,
                     PRIMARY KEY (function, status));
CREATE TABLE durations (function TEXT NOT NULL, bucket INTEGER NOT NULL,
                        count INTEGER NOT NULL, PRIMARY KEY (function, bucket));
"""
Statement = tuple[str, tuple[object, ...]]


@dataclass(frozen=True, slots=True)
class FunctionTally:
    """``buckets[i]``: runs that took at most ``BUCKETS[i]``; the last, one more than
    ``BUCKETS`` has, counts every run whose duration is known (Prometheus' ``+Inf``)."""

    statuses: Mapping[str, int] = field(default_factory=dict)
    cold_starts: int = 0
    duration_sum: float = 0.0
    buckets: tuple[int, ...] = (0,) * (len(BUCKETS) + 1)

    @property
    def finished(self) -> int:
        return sum(self.statuses.values())

    @property
    def failed(self) -> int:
        """Those that did not succeed (failed or timed out)."""
        return self.finished - self.statuses.get(Status.SUCCEEDED.value, 0)


Tally = Mapping[str, FunctionTally]  # by function


def counted(before: str | None, row: Row) -> list[Statement]:
    """What adds ``row`` to the totals, given the status its invocation had (None: none)."""
    if row.shadow or row.status not in FINAL or row.status == before:
        return []
    statements: list[Statement] = [(
        "INSERT INTO finals VALUES (?, ?, 1, ?, ?) ON CONFLICT (function, status) DO UPDATE "
        "SET count = count + 1, cold_starts = cold_starts + excluded.cold_starts, "
        "duration_sum = duration_sum + excluded.duration_sum",
        (row.function, row.status, int(row.cold_start), row.duration_s or 0.0))]
    if row.duration_s is not None:
        statements.append((
            "INSERT INTO durations VALUES (?, ?, 1) ON CONFLICT (function, bucket) DO UPDATE "
            "SET count = count + 1", (row.function, bisect_left(BUCKETS, row.duration_s))))
    return statements


def read(db: sqlite3.Connection) -> dict[str, FunctionTally]:
    statuses: dict[str, dict[str, int]] = {}
    cold: dict[str, int] = {}
    seconds: dict[str, float] = {}
    for function, status, count, cold_starts, duration_sum in db.execute(
            "SELECT function, status, count, cold_starts, duration_sum FROM finals"):
        statuses.setdefault(function, {})[status] = count
        cold[function] = cold.get(function, 0) + cold_starts
        seconds[function] = seconds.get(function, 0.0) + duration_sum
    per_bucket: dict[str, list[int]] = {}
    for function, bucket, count in db.execute("SELECT function, bucket, count FROM durations"):
        per_bucket.setdefault(function, [0] * (len(BUCKETS) + 1))[bucket] += count
    return {function: FunctionTally(  # buckets as Prometheus has them: cumulative
        statuses[function], cold[function], seconds[function],
        tuple(accumulate(per_bucket.get(function, [0] * (len(BUCKETS) + 1)))))
        for function in statuses}
