"""A batch's partial failures (``batchItemFailures``), retries of its failed events only,
and dead letters one per event, through the executor's core with in-memory ports."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from pipeline.batches import outcomes, partial
from pipeline.batches.assembly import Pending, invocation
from pipeline.batches.policy import Batching
from pipeline.batches.retries import EXPIRED
from pipeline.deadletters import Origin, Reason
from pipeline.execution import pending
from pipeline.executor import Handled
from pipeline.records import Failure, Invocation, Status, dumps
from pipeline.runtime.base import RunOutcome, RunRequest
from pipeline.specs import RetryPolicy

from .support import event, function_spec
from .test_executor import ScriptedRunner, Setup, Step, outcome

IDS = ["ev-1", "ev-2", "ev-3"]
RETRY_ERRORS = RetryPolicy(max_attempts=3, backoff_s=0.0, max_backoff_s=0.0,
                           retry_on=frozenset({Failure.ERROR}))


def batch(ids: list[str] = IDS) -> Invocation:
    pending = []
    for n, ident in enumerate(ids):
        ev = event(b"x", ident=ident)
        pending.append(Pending(ev, Origin("t.events.orders", 0, n), dumps(ev.to_dict())))
    return invocation("echo", "orders", pending)


def answering(*failed: str) -> RunOutcome:
    body = {"batchItemFailures": [{"itemIdentifier": f} for f in failed]}
    return outcome(Status.SUCCEEDED, None, output=json.dumps(body).encode())


def given(request: RunRequest) -> list[str]:
    return [e["id"] for e in json.loads(request.payload)]


# parsing the answer


@pytest.mark.parametrize("output", [
    b"", b"not json", b'[1, 2]', b'{"ok": true}', b'{"batchItemFailures": []}',
    b'{"batchItemFailures": null}', b'"batchItemFailures"'])
def test_an_answer_without_failures_fails_no_event(output: bytes) -> None:
    assert partial.reported(output, IDS) == frozenset()


def test_the_reported_events_are_the_failed_ones() -> None:
    answer = answering("ev-3", "ev-1", "ev-3").output

    assert partial.reported(answer, IDS) == {"ev-1", "ev-3"}


@pytest.mark.parametrize(("output", "why"), [
    (b'{"batchItemFailures": {"itemIdentifier": "ev-1"}}',
     'batchItemFailures: a list of {"itemIdentifier": <event id>}, not dict'),
    (b'{"batchItemFailures": ["ev-1"]}',
     "batchItemFailures[0]: an object with a string itemIdentifier"),
    (b'{"batchItemFailures": [{"itemIdentifier": "ev-1"}, {"id": "ev-2"}]}',
     "batchItemFailures[1]: an object with a string itemIdentifier"),
    (b'{"batchItemFailures": [{"itemIdentifier": "ev-9"}]}',
     "batchItemFailures[0].itemIdentifier: 'ev-9' is not an event of this batch"),
])
def test_a_malformed_answer_says_what_is_wrong(output: bytes, why: str) -> None:
    found = partial.reported(output, IDS)

    assert found == partial.Malformed(why)


def test_a_malformed_answer_fails_the_whole_batch_and_says_so() -> None:
    made = batch()
    answered = outcomes.settle(replace(
        pending(made), status=Status.SUCCEEDED,
        output=b'{"batchItemFailures": [{"itemIdentifier": "nope"}]}'))

    assert (answered.status, answered.failure) == (Status.FAILED, Failure.ERROR)
    assert answered.error is not None
    assert "malformed" in answered.error
    assert "the whole batch failed" in answered.error
    assert {v.status for v in outcomes.each(answered)} == {Status.FAILED}
    assert outcomes.each(answered)[0].error == answered.error


# through the executor


async def test_only_the_reported_events_fail_and_the_batch_is_not_retried_by_default() -> None:
    s = Setup(ScriptedRunner(echo=[lambda r: answering("ev-2")]), function_spec("echo"))

    assert await s.executor.handle(batch()) is Handled.FAILED

    (final,) = s.log.finals()
    assert [(i.event_id, i.status) for i in final.items] == [
        ("ev-1", Status.SUCCEEDED), ("ev-2", Status.FAILED), ("ev-3", Status.SUCCEEDED)]
    assert final.error == "1 of 3 events failed (batchItemFailures)"
    (letter,) = s.log.letters
    assert (letter.key, letter.reason) == (final.items[1].invocation_id, Reason.EXHAUSTED)
    assert letter.invocation is not None
    assert [i.event_id for i in letter.invocation.items] == ["ev-2"]
    assert [e["id"] for e in json.loads(letter.invocation.event.data)] == ["ev-2"]
    assert letter.invocation.id not in (final.invocation_id, letter.key)


async def test_retries_run_only_the_failed_events_and_the_rest_succeed() -> None:
    calls: list[list[str]] = []

    def step(failed: list[str]) -> Step:
        def run(request: RunRequest) -> RunOutcome:
            calls.append(given(request))
            return answering(*failed)
        return run

    script = [step(["ev-1", "ev-3"]), step(["ev-3"]), step(["ev-3"])]
    s = Setup(ScriptedRunner(echo=script),
              function_spec("echo", retry=RETRY_ERRORS))

    assert await s.executor.handle(batch()) is Handled.FAILED

    assert calls == [IDS, ["ev-1", "ev-3"], ["ev-3"]]
    (final,) = s.log.finals()
    assert [i.status for i in final.items] == [Status.SUCCEEDED, Status.SUCCEEDED,
                                               Status.FAILED]
    assert final.attempt == 3
    assert len(final.attempts) == 2
    assert [letter.key for letter in s.log.letters] == [final.items[2].invocation_id]
    retrying = [r for r in s.log.results if r.retry_at is not None]
    assert [i.status for i in retrying[0].items] == [Status.PENDING, Status.SUCCEEDED,
                                                     Status.PENDING]


async def test_a_batch_whose_failed_events_succeed_on_a_retry_succeeds() -> None:
    s = Setup(ScriptedRunner(echo=[lambda r: answering("ev-2"), lambda r: answering()]),
              function_spec("echo", retry=RETRY_ERRORS))

    assert await s.executor.handle(batch()) is Handled.SUCCEEDED

    (final,) = s.log.finals()
    assert final.status is Status.SUCCEEDED
    assert {i.status for i in final.items} == {Status.SUCCEEDED}
    assert s.log.letters == []


async def test_a_batch_that_fails_whole_dead_letters_each_event() -> None:
    s = Setup(ScriptedRunner(echo=[lambda r: outcome(Status.FAILED, Failure.ERROR,
                                                     error="exited with code 3")]),
              function_spec("echo"))

    assert await s.executor.handle(batch()) is Handled.FAILED

    assert sorted(letter.key for letter in s.log.letters) == sorted(
        i.invocation_id for i in batch().items)
    assert {letter.error for letter in s.log.letters} == {"exited with code 3"}


# expired events (max_record_age_s)


def aged(ids: list[str], expired: set[str]) -> Invocation:
    made = batch(ids)
    return replace(made, items=tuple(
        replace(i, expires_at="2000-01-01T00:00:00.000000Z" if i.event_id in expired
                else "2999-01-01T00:00:00.000000Z") for i in made.items))


def test_the_expiry_of_an_event_is_its_time_plus_the_max_age() -> None:
    pending = [Pending(event(b"x", ident="ev-1"), Origin("t.events.orders", 0, 0), b"{}")]

    made = invocation("echo", "orders", pending, Batching(max_record_age_s=60))

    assert made.items[0].expires_at == "2025-01-01T00:01:00.000000Z"  # the event's time


async def test_an_expired_event_is_not_run_and_is_dead_lettered_as_expired() -> None:
    calls: list[list[str]] = []

    def run(request: RunRequest) -> RunOutcome:
        calls.append(given(request))
        return answering()

    s = Setup(ScriptedRunner(echo=[run]), function_spec("echo"))

    assert await s.executor.handle(aged(IDS, {"ev-2"})) is Handled.FAILED

    assert calls == [["ev-1", "ev-3"]]
    (final,) = s.log.finals()
    assert [i.status for i in final.items] == [Status.SUCCEEDED, Status.FAILED,
                                               Status.SUCCEEDED]
    assert final.items[1].error == EXPIRED
    (letter,) = s.log.letters
    assert (letter.key, letter.reason) == (final.items[1].invocation_id, Reason.EXPIRED)


async def test_a_batch_whose_events_all_expired_does_not_run() -> None:
    s = Setup(ScriptedRunner(echo=[lambda r: answering()]), function_spec("echo"))

    assert await s.executor.handle(aged(IDS, set(IDS))) is Handled.FAILED

    assert s.runner.calls == []
    assert {letter.reason for letter in s.log.letters} == {Reason.EXPIRED}
    assert len(s.log.letters) == 3


# splitting a batch that fails whole (split_on_error)


def failing_on(bad: str, calls: list[list[str]]) -> Step:
    def run(request: RunRequest) -> RunOutcome:
        calls.append(given(request))
        if bad in given(request):
            return outcome(Status.FAILED, Failure.ERROR, error=f"choked on {bad}")
        return answering()
    return run


async def test_a_batch_that_fails_whole_is_split_until_the_bad_event_is_alone() -> None:
    ids = [f"ev-{n}" for n in range(1, 6)]
    calls: list[list[str]] = []
    s = Setup(ScriptedRunner(echo=[failing_on("ev-4", calls)]), function_spec("echo"))

    assert await s.executor.handle(replace(batch(ids), split_on_error=True)) is Handled.FAILED

    assert calls == [ids, ["ev-1", "ev-2"], ["ev-3", "ev-4", "ev-5"], ["ev-3"],
                     ["ev-4", "ev-5"], ["ev-4"], ["ev-5"]]
    (final,) = s.log.finals()
    assert [i.status for i in final.items] == [Status.SUCCEEDED] * 3 + [
        Status.FAILED, Status.SUCCEEDED]
    assert final.items[3].error == "choked on ev-4"
    assert final.error is not None
    assert final.error.startswith("1 of 5 events failed (the batch was split")
    (letter,) = s.log.letters
    assert letter.key == final.items[3].invocation_id
    assert letter.error == "choked on ev-4"


async def test_without_split_on_error_a_failed_batch_is_not_split() -> None:
    calls: list[list[str]] = []
    s = Setup(ScriptedRunner(echo=[failing_on("ev-2", calls)]), function_spec("echo"))

    assert await s.executor.handle(batch()) is Handled.FAILED

    assert calls == [IDS]
    assert len(s.log.letters) == 3


async def test_a_partly_reported_batch_is_not_split() -> None:
    s = Setup(ScriptedRunner(echo=[lambda r: answering("ev-2")]), function_spec("echo"))

    assert await s.executor.handle(replace(batch(), split_on_error=True)) is Handled.FAILED

    assert len(s.runner.calls) == 1
