"""The index's totals of the Results that ended (``pipeline.index.tally``): counted once
as a Result ends, again when a redriven one ends again, never for a shadow run or a
batch's events, started over with the index."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import Any

import pytest

from pipeline.index import tally
from pipeline.index.store import IndexStore
from pipeline.index.tally import BUCKETS
from pipeline.records import Item, Result, Status
from tests.unit.index.records import RESULTS, Log, result


def ended(ident: str, status: Status = Status.SUCCEEDED, duration_s: float | None = 0.2,
          **changes: Any) -> Result:
    return replace(result(ident, status=status), duration_s=duration_s, **changes)


def test_a_result_counts_once_as_it_ends_with_its_duration_and_cold_start(
        log: Log, db: sqlite3.Connection) -> None:
    log.put(result("a", status=Status.PENDING), result("a", status=Status.RUNNING))
    assert tally.read(db) == {}

    log.put(ended("a", duration_s=0.2), ended("a", duration_s=0.2))  # written twice

    echo = tally.read(db)["echo"]
    assert echo.statuses == {"succeeded": 1}
    assert (echo.finished, echo.failed, echo.cold_starts) == (1, 0, 1)
    assert echo.duration_sum == pytest.approx(0.2)
    bucket = BUCKETS.index(0.25)
    assert echo.buckets == (0,) * bucket + (1,) * (len(BUCKETS) + 1 - bucket)


def test_durations_fall_in_the_first_bucket_they_fit_and_beyond_the_last_in_inf(
        log: Log, db: sqlite3.Connection) -> None:
    log.put(ended("a", duration_s=0.005), ended("b", duration_s=0.0051),
            ended("c", duration_s=61.0), ended("d", duration_s=None, cold_start=False))

    echo = tally.read(db)["echo"]
    assert echo.buckets[0] == 1  # le 0.005
    assert echo.buckets[1] == 2  # le 0.01
    assert echo.buckets[-2] == 2  # le 60: c is not
    assert echo.buckets[-1] == 3  # +Inf: every run whose duration is known
    assert (echo.finished, echo.cold_starts) == (4, 3)


def test_failures_timeouts_and_a_redriven_one_that_then_succeeds(
        log: Log, db: sqlite3.Connection) -> None:
    log.put(ended("a", Status.FAILED), ended("b", Status.TIMEOUT))
    log.put(result("a", status=Status.PENDING), ended("a"))  # redriven: it ends again

    echo = tally.read(db)["echo"]
    assert echo.statuses == {"failed": 1, "timeout": 1, "succeeded": 1}
    assert (echo.finished, echo.failed) == (3, 2)


def test_shadow_runs_and_a_batchs_events_are_not_counted(log: Log,
                                                         db: sqlite3.Connection) -> None:
    items = (Item("ev-1", "one", status=Status.SUCCEEDED),
             Item("ev-2", "two", status=Status.FAILED))
    log.put(ended("shadowed", shadow=True), ended("batch", items=items))

    assert tally.read(db)["echo"].statuses == {"succeeded": 1}  # the batch, as one run
    assert db.execute("SELECT count(*) FROM invocations").fetchone() == (4,)


def test_functions_are_counted_apart_and_start_over_with_the_index(
        log: Log, store: IndexStore, db: sqlite3.Connection) -> None:
    log.put(ended("a"), replace(ended("b"), function="other"))
    assert set(tally.read(db)) == {"echo", "other"}

    store.clear(RESULTS)

    assert tally.read(db) == {}
