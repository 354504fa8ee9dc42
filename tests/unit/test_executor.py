"""The executor's core against in-memory ports: every path ends in one final Result."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import replace

import pytest

from pipeline.admission import Admission
from pipeline.deadletters import Reason
from pipeline.errors import BrokerUnavailable, PayloadTooLarge, RuntimeUnavailable
from pipeline.executor import RUNNING_AFTER_S, Executor, Handled
from pipeline.finals import RecentFinals
from pipeline.ids import invocation_id
from pipeline.records import Failure, Invocation, Status
from pipeline.runtime.base import RunOutcome, RunRequest
from pipeline.specs import FunctionSpec, RetryPolicy

from .support import FINISHED_AT, STARTED_AT, MemoryLog, event, function_spec

FAST = RetryPolicy(max_attempts=3, backoff_s=0.0, max_backoff_s=0.0)
Step = Callable[[RunRequest], RunOutcome]


def ok(request: RunRequest) -> RunOutcome:
    return outcome(Status.SUCCEEDED, None, output=b"ok:" + request.payload)


def outcome(status: Status, failure: Failure | None, output: bytes = b"",
            error: str | None = None, logs: str = "") -> RunOutcome:
    return RunOutcome(status=status, output=output, logs=logs, started_at=STARTED_AT,
                      finished_at=FINISHED_AT, duration_s=0.25, error=error, failure=failure)


def timing_out(request: RunRequest) -> RunOutcome:
    return outcome(Status.TIMEOUT, Failure.TIMEOUT, error="timed out after 1s")


def erring(request: RunRequest) -> RunOutcome:
    return outcome(Status.FAILED, Failure.ERROR, error="exited with code 3", logs="boom\n")


def raising(exc: Exception) -> Step:
    def step(request: RunRequest) -> RunOutcome:
        raise exc
    return step


class ScriptedRunner:
    """Runs each call by the next step of its function's script (the last one repeats)."""

    def __init__(self, **scripts: list[Step]) -> None:
        self.scripts = scripts
        self.calls: list[tuple[str, int]] = []
        self.gate: dict[str, asyncio.Event] = {}  # a function whose event is unset waits

    async def resolve_image(self, image: str) -> str:
        return f"sha256:{image}"

    async def run(self, request: RunRequest) -> RunOutcome:
        name = request.function.name
        script = self.scripts[name]
        step = script[min(sum(1 for n, _ in self.calls if n == name), len(script) - 1)]
        self.calls.append((name, int(request.env.get("ATTEMPT", "0"))))
        if name in self.gate:
            await self.gate[name].wait()
        return step(request)

    async def close(self) -> None:
        pass


def invocation(function: str = "echo", ident: str = "ev-1") -> Invocation:
    ev = event(b"x", ident=ident)
    return Invocation(id=invocation_id("orders", ev, function), function=function, event=ev,
                      source="orders")


class Setup:
    def __init__(self, runner: ScriptedRunner, *specs: FunctionSpec, max_running: int = 16
                 ) -> None:
        self.functions = {spec.name: spec for spec in specs}
        self.finals = RecentFinals(600)
        self.log = MemoryLog(self.finals)
        self.runner = runner
        self.executor = Executor(self.functions.get, runner, self.log, self.finals,
                                 Admission(max_running))


def setup(*steps: Step, policy: RetryPolicy = FAST, **changes: object) -> Setup:
    return Setup(ScriptedRunner(echo=list(steps)),
                 function_spec("echo", retry=policy, **changes))


async def test_a_success_writes_one_final_result_and_no_dead_letter() -> None:
    s = setup(ok)

    assert await s.executor.handle(invocation()) is Handled.SUCCEEDED

    [final] = s.log.finals()
    assert final.status is Status.SUCCEEDED
    assert final.output == b"ok:x"
    assert final.attempts == ()
    assert [r.status for r in s.log.results] == [Status.SUCCEEDED]  # too quick to note running
    assert s.log.letters == []


async def test_a_run_that_lasts_is_noted_running_before_its_final_result() -> None:
    s = setup(ok)
    s.runner.gate["echo"] = gate = asyncio.Event()
    handling = asyncio.create_task(s.executor.handle(invocation()))

    await asyncio.sleep(RUNNING_AFTER_S + 0.1)
    assert [r.status for r in s.log.results] == [Status.RUNNING]
    gate.set()

    assert await handling is Handled.SUCCEEDED
    assert [r.status for r in s.log.results] == [Status.RUNNING, Status.SUCCEEDED]


async def test_the_functions_own_error_is_not_retried_by_default() -> None:
    s = setup(erring)

    assert await s.executor.handle(invocation()) is Handled.FAILED

    assert len(s.runner.calls) == 1
    [final] = s.log.finals()
    assert (final.status, final.failure, final.attempt) == (Status.FAILED, Failure.ERROR, 1)
    [letter] = s.log.letters
    assert letter.reason is Reason.EXHAUSTED
    assert letter.failure is Failure.ERROR
    assert letter.key == final.invocation_id
    assert letter.invocation is not None
    assert letter.invocation.event.data == b"x"
    assert letter.logs_tail == "boom\n"
    assert letter.image_digest == "sha256:echo"
    assert [(a.attempt, a.failure) for a in letter.attempts] == [(1, Failure.ERROR)]


async def test_a_timeout_is_retried_until_the_last_attempt_then_dead_lettered() -> None:
    s = setup(timing_out)

    assert await s.executor.handle(invocation()) is Handled.FAILED

    assert len(s.runner.calls) == 3
    [final] = s.log.finals()
    assert (final.status, final.attempt) == (Status.TIMEOUT, 3)
    assert [a.attempt for a in final.attempts] == [1, 2]
    [letter] = s.log.letters
    assert [a.attempt for a in letter.attempts] == [1, 2, 3]
    waits = [r for r in s.log.results if r.status is Status.PENDING]
    assert [r.attempt for r in waits] == [1, 2]
    assert all(r.retry_at is not None and r.failure is Failure.TIMEOUT for r in waits)


async def test_the_functions_own_error_is_retried_when_the_policy_says_so() -> None:
    s = setup(erring, ok, policy=replace(FAST, retry_on=frozenset({Failure.ERROR})))

    assert await s.executor.handle(invocation()) is Handled.SUCCEEDED

    [final] = s.log.finals()
    assert (final.status, final.attempt) == (Status.SUCCEEDED, 2)
    assert [(a.attempt, a.status, a.error) for a in final.attempts] == [
        (1, Status.FAILED, "exited with code 3")]
    assert s.log.letters == []


async def test_an_engine_that_does_not_answer_is_retried() -> None:
    s = setup(raising(RuntimeUnavailable("Docker Engine unreachable")), ok)

    assert await s.executor.handle(invocation()) is Handled.SUCCEEDED

    [final] = s.log.finals()
    assert final.attempts[0].failure is Failure.UNAVAILABLE


async def test_an_unexpected_error_is_an_internal_failure_not_a_lost_invocation() -> None:
    """Before: a PermissionError in the warm pool escaped the agent, Faust acknowledged the
    message, and the Result stayed ``running`` forever."""
    s = setup(raising(PermissionError(13, "Permission denied")))

    assert await s.executor.handle(invocation()) is Handled.FAILED

    [final] = s.log.finals()
    assert final.failure is Failure.INTERNAL
    assert "PermissionError" in (final.error or "")
    assert len(s.runner.calls) == 3  # internal failures are retried by default
    assert s.log.letters[0].reason is Reason.EXHAUSTED


async def test_the_attempt_number_grows_and_the_retries_are_bounded() -> None:
    """Before: a RetryableError was retried forever with attempt 1."""
    s = setup(raising(RuntimeUnavailable("down")), policy=replace(FAST, max_attempts=4))

    await s.executor.handle(invocation())

    assert len(s.runner.calls) == 4
    assert [r.attempt for r in s.log.results if r.status is Status.PENDING] == [1, 2, 3]
    assert s.log.finals()[0].attempt == 4


async def test_an_unknown_function_fails_and_is_dead_lettered() -> None:
    s = setup(ok)

    assert await s.executor.handle(invocation("gone")) is Handled.FAILED

    [final] = s.log.finals()
    assert final.error == "function 'gone' does not exist"
    assert s.log.letters[0].reason is Reason.UNKNOWN_FUNCTION
    assert s.runner.calls == []


async def test_a_final_result_is_written_however_long_the_broker_is_away() -> None:
    s = setup(ok)
    s.log.failures = [BrokerUnavailable("down"), BrokerUnavailable("still down")]

    assert await s.executor.handle(invocation()) is Handled.SUCCEEDED

    assert [r.status for r in s.log.finals()] == [Status.SUCCEEDED]


async def test_a_result_too_large_to_write_becomes_a_failure_that_fits() -> None:
    s = setup(ok)
    s.log.failures = [PayloadTooLarge("the record is larger than the broker accepts")]

    await s.executor.handle(invocation())

    [final] = s.log.finals()
    assert final.status is Status.FAILED
    assert final.output == b""
    assert "too large to record" in (final.error or "")


async def test_an_invocation_with_a_final_result_is_not_run_again() -> None:
    s = setup(ok)
    first = invocation()
    s.finals.add(first.id, True)

    assert await s.executor.handle(first) is Handled.DUPLICATE

    assert s.runner.calls == []
    assert s.log.results == []


async def test_a_redriven_invocation_runs_again_despite_its_earlier_final_result() -> None:
    s = setup(ok)
    first = invocation()
    s.finals.add(first.id, True)

    assert await s.executor.handle(replace(first, redrive=1)) is Handled.SUCCEEDED
    assert s.log.finals()[0].redrive == 1


async def test_a_second_delivery_while_it_runs_waits_for_the_first() -> None:
    s = setup(ok)
    s.runner.gate["echo"] = asyncio.Event()
    first = asyncio.create_task(s.executor.handle(invocation()))
    second = asyncio.create_task(s.executor.handle(invocation()))
    await asyncio.sleep(0.01)
    s.runner.gate["echo"].set()

    assert await first is Handled.SUCCEEDED
    assert await second is Handled.SUCCEEDED
    assert len(s.runner.calls) == 1


async def test_a_run_nobody_waits_for_is_abandoned_and_leaves_nothing_in_flight() -> None:
    """Before: ``_inflight`` kept the entry of a run whose caller was cancelled, and the
    run went on writing after its worker had stopped."""
    s = setup(ok)
    s.runner.gate["echo"] = asyncio.Event()
    caller = asyncio.create_task(s.executor.handle(invocation()))
    await asyncio.sleep(0.01)

    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    s.runner.gate["echo"].set()
    await asyncio.sleep(0.05)

    assert s.executor.inflight == 0
    assert s.log.finals() == []  # unacknowledged: whoever gets it next runs it


async def test_a_run_another_caller_still_waits_for_goes_on() -> None:
    s = setup(ok)
    s.runner.gate["echo"] = asyncio.Event()
    first = asyncio.create_task(s.executor.handle(invocation()))
    second = asyncio.create_task(s.executor.handle(invocation()))
    await asyncio.sleep(0.01)

    first.cancel()
    s.runner.gate["echo"].set()

    assert await second is Handled.SUCCEEDED
    assert s.executor.inflight == 0


async def test_a_retry_waiting_holds_no_slot_of_its_function(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One slot; the first invocation fails and waits 5 s to retry: the second runs in that
    time instead of waiting behind it. The wait is drawn at the top of its jitter: a draw
    near 0 s made the retry run first (CI, a machine under load)."""
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    policy = RetryPolicy(max_attempts=2, backoff_s=5, max_backoff_s=5,
                         retry_on=frozenset({Failure.ERROR}))
    runner = ScriptedRunner(echo=[erring, ok, ok])
    s = Setup(runner, function_spec("echo", retry=policy, max_concurrency=1))
    first = asyncio.create_task(s.executor.handle(invocation(ident="a")))
    await asyncio.sleep(0.05)

    second = await asyncio.wait_for(s.executor.handle(invocation(ident="b")), timeout=2)

    assert second is Handled.SUCCEEDED
    assert [name for name, _ in runner.calls] == ["echo", "echo"]  # a's first run, then b's
    first.cancel()


async def test_a_slow_function_does_not_hold_up_another() -> None:
    runner = ScriptedRunner(slow=[ok], fast=[ok])
    runner.gate["slow"] = asyncio.Event()
    s = Setup(runner, function_spec("slow", max_concurrency=2), function_spec("fast"),
              max_running=4)
    slow = [asyncio.create_task(s.executor.handle(invocation("slow", f"s{i}")))
            for i in range(10)]
    await asyncio.sleep(0.01)

    fast = await asyncio.wait_for(asyncio.gather(
        *(s.executor.handle(invocation("fast", f"f{i}")) for i in range(10))), timeout=1)

    assert fast == [Handled.SUCCEEDED] * 10
    assert s.executor.admission.load()["slow"] == {"running": 2, "waiting": 8}
    runner.gate["slow"].set()
    assert await asyncio.gather(*slow) == [Handled.SUCCEEDED] * 10


async def test_an_invocation_finished_elsewhere_while_it_waited_for_a_slot_is_not_run() -> None:
    """A rebalance: the partition's previous owner finishes an invocation while its new
    owner holds it, queued behind a full slot; the new owner must not run it again."""
    s = setup(ok, max_concurrency=1)
    s.runner.gate["echo"] = gate = asyncio.Event()
    first, second = invocation(ident="ev-1"), invocation(ident="ev-2")
    running = asyncio.create_task(s.executor.handle(first))
    waiting = asyncio.create_task(s.executor.handle(second))
    await asyncio.sleep(0.05)

    s.finals.add(second.id, True)  # its final Result, written by the other worker
    gate.set()

    assert await running is Handled.SUCCEEDED
    assert await waiting is Handled.SUPERSEDED
    assert len(s.runner.calls) == 1
    assert [f.invocation_id for f in s.log.finals()] == [first.id]


async def test_a_held_executor_starts_nothing_and_is_quiet_once_what_started_is_handled(
) -> None:
    """A rebalance: what runs goes on and is waited for; nothing new starts (it could start
    on the partition's new owner too) until the assignment releases the executor."""
    s = setup(ok)
    s.runner.gate["echo"] = gate = asyncio.Event()
    going = asyncio.create_task(s.executor.handle(invocation(ident="ev-1")))
    await asyncio.sleep(0.05)

    s.executor.hold()
    held = asyncio.create_task(s.executor.handle(invocation(ident="ev-2")))
    await asyncio.sleep(0.05)
    assert not await s.executor.quiet(0.05)  # ev-1 runs
    gate.set()
    assert await s.executor.quiet(1)
    assert await going is Handled.SUCCEEDED
    assert [n for n, _ in s.runner.calls] == ["echo"]  # ev-2 did not start

    s.executor.release()
    assert await held is Handled.SUCCEEDED
    assert len(s.runner.calls) == 2
