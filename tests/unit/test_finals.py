from __future__ import annotations

from pipeline.finals import RecentFinals, status_headers
from pipeline.records import Result, Status

from .support import Clock


def result(status: Status, redrive: int = 0) -> Result:
    return Result(invocation_id="i1", event_id="e1", function="f", status=status,
                  redrive=redrive)


def test_a_final_result_read_from_the_log_is_remembered() -> None:
    finals = RecentFinals(60)

    finals.apply(b"i1", status_headers(result(Status.SUCCEEDED)), at=1e12)

    assert finals.is_final("i1")
    assert finals.started("i1")
    assert not finals.is_final("i2")


def test_running_is_started_but_not_final_and_pending_is_neither() -> None:
    finals = RecentFinals(60)

    finals.apply(b"a", status_headers(result(Status.RUNNING)), at=1e12)
    finals.apply(b"b", status_headers(result(Status.PENDING)), at=1e12)

    assert finals.started("a")
    assert not finals.is_final("a")
    assert not finals.started("b")


def test_a_late_running_write_does_not_undo_a_final_one() -> None:
    finals = RecentFinals(60)

    finals.add("i1", True)
    finals.add("i1", False)

    assert finals.is_final("i1")


def test_a_redrive_is_final_only_once_a_result_of_that_redrive_is() -> None:
    finals = RecentFinals(60)
    finals.apply(b"i1", status_headers(result(Status.FAILED)), at=1e12)

    assert not finals.is_final("i1", redrive=1)
    finals.apply(b"i1", status_headers(result(Status.SUCCEEDED, redrive=1)), at=1e12)
    assert finals.is_final("i1", redrive=1)


def test_results_older_than_the_horizon_are_forgotten() -> None:
    clock = Clock(1000.0)
    finals = RecentFinals(60, clock)
    finals.add("old", True)
    clock.now += 61

    finals.add("new", True)

    assert not finals.started("old")
    assert finals.is_final("new")
    assert len(finals) == 1


def test_records_without_a_status_header_are_ignored() -> None:
    finals = RecentFinals(60)

    finals.apply(b"i1", [], at=1e12)

    assert len(finals) == 0
