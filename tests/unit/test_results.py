from __future__ import annotations

import pytest

from pipeline.errors import NotFound
from pipeline.records import Result, Status, dumps
from pipeline.results import ResultsIndex


def result(invocation_id: str, event_id: str = "ev-1", function: str = "echo",
           status: Status = Status.SUCCEEDED) -> Result:
    return Result(invocation_id=invocation_id, event_id=event_id, function=function,
                  status=status, output=b"out")


def put(index: ResultsIndex, res: Result) -> None:
    index.apply(res.invocation_id.encode(), dumps(res.to_dict()))


@pytest.fixture
def index() -> ResultsIndex:
    return ResultsIndex()


def test_applied_result_is_found_by_invocation_id(index: ResultsIndex) -> None:
    res = result("inv-1")

    put(index, res)

    assert index.get("inv-1") == res


def test_latest_result_for_a_key_wins(index: ResultsIndex) -> None:
    put(index, result("inv-1", status=Status.RUNNING))
    put(index, result("inv-1", status=Status.SUCCEEDED))

    assert index.get("inv-1").status is Status.SUCCEEDED
    assert len(index.for_event("ev-1")) == 1


def test_for_event_lists_its_results_by_function(index: ResultsIndex) -> None:
    put(index, result("inv-b", function="zip"))
    put(index, result("inv-a", function="audit"))
    put(index, result("inv-c", event_id="ev-2", function="audit"))

    assert [r.function for r in index.for_event("ev-1")] == ["audit", "zip"]
    assert [r.invocation_id for r in index.for_event("ev-2")] == ["inv-c"]


def test_for_an_unknown_event_is_empty(index: ResultsIndex) -> None:
    assert index.for_event("never") == []


def test_tombstone_removes_the_result_everywhere(index: ResultsIndex) -> None:
    put(index, result("inv-1"))
    put(index, result("inv-2", function="zip"))

    index.apply(b"inv-1", None)

    with pytest.raises(NotFound, match="inv-1"):
        index.get("inv-1")
    assert [r.invocation_id for r in index.for_event("ev-1")] == ["inv-2"]


def test_tombstone_for_an_unknown_key_is_harmless(index: ResultsIndex) -> None:
    index.apply(b"never", None)

    with pytest.raises(NotFound):
        index.get("never")


def test_missing_invocation_is_not_found(index: ResultsIndex) -> None:
    with pytest.raises(NotFound, match="nope"):
        index.get("nope")


def test_a_functions_recent_invocations_newest_first(index: ResultsIndex) -> None:
    for n in range(5):
        put(index, result(f"inv-{n}", event_id=f"ev-{n}", function="echo"))
    put(index, result("other", function="hello"))
    put(index, result("inv-1", event_id="ev-1", status=Status.FAILED))  # an update

    recent = index.for_function("echo", 3)

    assert [r.invocation_id for r in recent] == ["inv-4", "inv-3", "inv-2"]
    assert index.get("inv-1").status is Status.FAILED
    assert [r.invocation_id for r in index.for_function("echo", 10)][-2:] == ["inv-1", "inv-0"]


def test_a_deleted_result_leaves_the_functions_history(index: ResultsIndex) -> None:
    put(index, result("inv-1"))
    index.apply(b"inv-1", None)

    assert index.for_function("echo", 10) == []
