from __future__ import annotations

import pytest

from pipeline.errors import RuntimeUnavailable
from pipeline.execution import event_env, execute, failed, plan_invocations, running
from pipeline.ids import invocation_id
from pipeline.records import Event, Failure, Invocation, Status
from pipeline.registry import Record, Registry, encode, record_key
from pipeline.runtime.base import Runner, RunOutcome, RunRequest

from .support import FINISHED_AT, STARTED_AT, MemoryRunner, event, function_spec, subscription


def registry_of(*records: Record) -> Registry:
    registry = Registry()
    for record in records:
        registry.apply(record_key(record).encode(), encode(record))
    return registry


def invocation(ev: Event | None = None, function: str = "echo") -> Invocation:
    ev = ev or event(b'{"n": 1}', "application/json")
    return Invocation(id=invocation_id("orders", ev, function), function=function, event=ev,
                      source="orders", attempt=2, queued_at="2025-01-01T00:00:00Z")


# plan_invocations


def test_one_invocation_per_subscribed_function() -> None:
    registry = registry_of(subscription("s1", "zip"), subscription("s2", "audit"),
                           subscription("s3", "other", source="payments"))
    ev = event(b"x")

    planned = plan_invocations(ev, registry, "orders")

    assert [i.function for i in planned] == ["audit", "zip"]
    assert [i.id for i in planned] == [invocation_id("orders", ev, "audit"),
                                       invocation_id("orders", ev, "zip")]
    assert all(i.event == ev and i.replay_id == "" and i.attempt == 1 and i.source == "orders"
               for i in planned)


def test_two_subscriptions_of_one_function_make_one_invocation() -> None:
    registry = registry_of(subscription("s1", "audit"), subscription("s2", "audit"))

    planned = plan_invocations(event(b"x"), registry, "orders")

    assert [i.function for i in planned] == ["audit"]


def test_only_functions_whose_filter_matches_are_planned() -> None:
    registry = registry_of(
        subscription("s1", "big", event_filter={"data": {"n": [{"numeric": [">", 10]}]}}),
        subscription("s2", "small", event_filter={"data": {"n": [{"numeric": ["<=", 10]}]}}),
        subscription("s3", "audit"))

    planned = plan_invocations(event(b'{"n": 3}', "application/json"), registry, "orders")

    assert [i.function for i in planned] == ["audit", "small"]


def test_an_event_that_matches_no_filter_plans_nothing() -> None:
    registry = registry_of(subscription("s1", "audit", event_filter={"type": ["order.paid"]}))

    assert plan_invocations(event(b"x"), registry, "orders") == []


def test_data_that_is_not_json_does_not_match_a_data_filter() -> None:
    registry = registry_of(subscription("s1", "audit", event_filter={"data": {"n": [3]}}))

    assert plan_invocations(event(b'{"n": 3}', "text/plain"), registry, "orders") == []


def test_two_filtered_subscriptions_of_one_function_make_one_invocation() -> None:
    registry = registry_of(
        subscription("s1", "audit", event_filter={"type": [{"prefix": "order."}]}),
        subscription("s2", "audit", event_filter={"data": {"n": [3]}}),
        subscription("s3", "audit", event_filter={"type": ["other"]}))
    ev = event(b'{"n": 3}', "application/json")

    planned = plan_invocations(ev, registry, "orders")

    assert [i.id for i in planned] == [invocation_id("orders", ev, "audit")]


def test_event_nobody_subscribes_to_plans_nothing() -> None:
    registry = registry_of(subscription("s1", "audit", source="payments"))

    assert plan_invocations(event(b"x", source="orders"), registry, "orders") == []


def test_replay_plans_new_invocation_ids() -> None:
    registry = registry_of(subscription("s1", "audit"))
    ev = event(b"x")

    [original] = plan_invocations(ev, registry, "orders")
    [replayed] = plan_invocations(ev, registry, "orders", replay_id="r1")

    assert replayed.id != original.id
    assert replayed.id == invocation_id("orders", ev, "audit", "r1")
    assert replayed.replay_id == "r1"


def test_the_same_event_planned_twice_gets_the_same_ids() -> None:
    registry = registry_of(subscription("s1", "audit"))

    first = plan_invocations(event(b"x"), registry, "orders")
    again = plan_invocations(event(b"x"), registry, "orders")

    assert [i.id for i in first] == [i.id for i in again]


# execute


async def test_execute_runs_the_payload_and_reports_the_outcome() -> None:
    runner: Runner = MemoryRunner()  # mypy checks the fake against the port
    spec = function_spec("echo")
    inv = invocation()

    res = await execute(inv, spec, runner)

    assert res.status is Status.SUCCEEDED
    assert res.output == b'echo:{"n": 1}'
    assert (res.invocation_id, res.event_id, res.function) == (inv.id, "ev-1", "echo")
    assert res.attempt == 2
    assert res.image_digest == "sha256:echo"
    assert (res.exit_code, res.error, res.logs) == (0, None, "ran echo\n")
    assert res.cold_start is False


async def test_execute_carries_the_timings() -> None:
    res = await execute(invocation(), function_spec(), MemoryRunner())

    assert res.queued_at == "2025-01-01T00:00:00Z"
    assert (res.started_at, res.finished_at, res.duration_s) == (STARTED_AT, FINISHED_AT, 0.25)


async def test_execute_sends_the_event_data_and_the_function() -> None:
    runner = MemoryRunner()
    spec = function_spec("echo", timeout_s=3.0)
    inv = invocation()

    await execute(inv, spec, runner)

    [request] = runner.requests
    assert request.payload == inv.event.data
    assert request.function == spec
    assert request.invocation_id == inv.id


async def test_execute_env_has_cloudevents_attributes_and_the_function_env() -> None:
    runner = MemoryRunner()
    spec = function_spec("echo", env={"GREETING": "hi", "CE_ID": "spoofed"})
    ev = Event(id="ev-9", source="orders", type="order.created", subject="order/9",
               datacontenttype="application/json", time="2025-01-01T00:00:00Z")
    inv = invocation(ev)

    await execute(inv, spec, runner)

    env = runner.requests[0].env
    assert env["GREETING"] == "hi"
    assert env["CE_ID"] == "ev-9"
    assert env["CE_SOURCE"] == "orders"
    assert env["CE_TYPE"] == "order.created"
    assert env["CE_SUBJECT"] == "order/9"
    assert env["CE_DATACONTENTTYPE"] == "application/json"
    assert env["FAASFLOW_INVOCATION_ID"] == inv.id
    assert env["FAASFLOW_FUNCTION"] == "echo"


def test_event_env_omits_unset_optional_attributes() -> None:
    env = event_env(event(b"x"))

    assert env == {"CE_ID": "ev-1", "CE_SOURCE": "orders", "CE_TYPE": "order.created",
                   "CE_TIME": "2025-01-01T00:00:00Z"}


async def test_execute_reports_a_failing_function_as_failed() -> None:
    res = await execute(invocation(), function_spec(), MemoryRunner(exit_code=3))

    assert res.status is Status.FAILED
    assert (res.exit_code, res.error) == (3, "exited with code 3")
    assert res.status.final


class UnreachableRunner(MemoryRunner):
    async def run(self, request: RunRequest) -> RunOutcome:
        raise RuntimeUnavailable("Docker Engine unreachable")


async def test_execute_lets_a_retryable_runtime_error_through() -> None:
    with pytest.raises(RuntimeUnavailable):
        await execute(invocation(), function_spec(), UnreachableRunner())


# running and failed


def test_running_marks_the_start() -> None:
    inv = invocation()

    res = running(inv, function_spec("echo", image_digest="sha256:abc"))

    assert res.status is Status.RUNNING
    assert not res.status.final
    assert (res.invocation_id, res.event_id, res.function) == (inv.id, "ev-1", "echo")
    assert (res.attempt, res.image_digest, res.queued_at) == (2, "sha256:abc", inv.queued_at)
    assert res.started_at is not None
    assert res.finished_at is None


def test_failed_is_final_with_the_reason_and_no_duration() -> None:
    inv = invocation()

    res = failed(inv, "function 'echo' was deleted", Failure.START)

    assert res.status is Status.FAILED
    assert res.error == "function 'echo' was deleted"
    assert res.failure is Failure.START
    assert (res.invocation_id, res.event_id, res.attempt) == (inv.id, "ev-1", 2)
    assert res.started_at == res.finished_at
    assert res.duration_s == 0.0
    assert res.output == b""
