"""The supervisor's decisions: backoff, when a live child is unhealthy, how exits are named and
how ``faasflow status`` derives each state."""

from __future__ import annotations

import pytest
from tenacity import RetryCallState, Retrying

from pipeline.cli.state import ComponentState, Exit, SupervisorState
from pipeline.cli.supervision import (
    Observation,
    RestartPolicy,
    component_state,
    component_view,
    exit_reason,
    stalled_since,
    supervisor_state,
    unhealthy,
)
from pipeline.health import Health

POLICY = RestartPolicy(backoff_s=1.0, max_backoff_s=30.0, jitter_s=1.0, reset_after_s=60.0,
                       start_timeout_s=120.0, stale_after_s=30.0, stall_grace_s=30.0,
                       unanswered_grace_s=20.0)
NOW = 10_000.0


def delay(policy: RestartPolicy, exits_in_a_row: int) -> float:
    attempt = RetryCallState(Retrying(), None, (), {})
    attempt.attempt_number = exits_in_a_row
    return policy.wait()(attempt)


@pytest.mark.parametrize(("exits", "low"), [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0)])
def test_backoff_doubles_with_each_exit_in_a_row_plus_jitter(exits: int, low: float) -> None:
    delays = {delay(POLICY, exits) for _ in range(50)}
    assert all(low <= d <= low + POLICY.jitter_s for d in delays)
    assert len(delays) > 1  # jittered: restarts of several children do not line up


def test_backoff_is_capped() -> None:
    assert delay(POLICY, 20) == POLICY.max_backoff_s


def test_the_count_starts_over_only_after_a_child_ran_well() -> None:
    assert not POLICY.ran_well(ready_at=None, exited_at=NOW)  # never became ready
    assert not POLICY.ran_well(ready_at=NOW - 59, exited_at=NOW)
    assert POLICY.ran_well(ready_at=NOW - 60, exited_at=NOW)


def report(status: str = "ok", age_s: float = 1.0, *problems: str) -> Health:
    return Health(status=status, pid=42, at=NOW - age_s, problems=problems)


def test_a_worker_with_a_fresh_report_is_healthy() -> None:
    seen = Observation(started_at=NOW - 300, ready=True, health=report(age_s=2))
    assert unhealthy("worker", seen, NOW, POLICY) is None


def test_a_worker_whose_report_went_stale_is_hung() -> None:
    seen = Observation(started_at=NOW - 300, ready=True, health=report(age_s=31))
    assert unhealthy("worker", seen, NOW, POLICY) == "health report 31s old (hung or stopped)"


def test_a_stalled_worker_gets_a_grace_period() -> None:
    stalled = report("stalled", 1, "invocations: 40 waiting, none done for 60s")
    within = Observation(started_at=NOW - 300, ready=True, health=stalled,
                         stalled_since=NOW - 29)
    assert unhealthy("worker", within, NOW, POLICY) is None
    past = Observation(started_at=NOW - 300, ready=True, health=stalled, stalled_since=NOW - 31)
    assert unhealthy("worker", past, NOW, POLICY) == (
        "stalled for 31s (invocations: 40 waiting, none done for 60s)")


def test_a_degraded_worker_is_not_restarted() -> None:
    seen = Observation(started_at=NOW - 300, ready=True,
                       health=report("degraded", 1, "broker unreachable"))
    assert unhealthy("worker", seen, NOW, POLICY) is None


def test_a_worker_without_reports_is_judged_by_readiness_alone() -> None:
    assert unhealthy("worker", Observation(started_at=NOW - 119), NOW, POLICY) is None
    assert unhealthy("worker", Observation(started_at=NOW - 121), NOW, POLICY) == (
        "not ready 121s after start")
    ready = Observation(started_at=NOW - 3600, ready=True)
    assert unhealthy("worker", ready, NOW, POLICY) is None


def test_stalled_since_follows_an_unbroken_run_of_stalled_reports() -> None:
    assert stalled_since(None, None) is None
    assert stalled_since(None, report("ok")) is None
    first = report("stalled", 5)
    assert stalled_since(None, first) == first.at
    assert stalled_since(NOW - 40, report("stalled", 1)) == NOW - 40
    assert stalled_since(NOW - 40, report("ok")) is None


def test_a_gateway_answering_503_is_not_restarted() -> None:
    # "not ready": its broker is down; a new gateway would not reach it either
    seen = Observation(started_at=NOW - 3600, answered_at=NOW - 1)
    assert unhealthy("gateway", seen, NOW, POLICY) is None


def test_a_gateway_that_stopped_answering_is_restarted_after_the_grace_period() -> None:
    seen = Observation(started_at=NOW - 3600, ready=True, answered_at=NOW - 19)
    assert unhealthy("gateway", seen, NOW, POLICY) is None
    silent = Observation(started_at=NOW - 3600, ready=True, answered_at=NOW - 21)
    assert unhealthy("gateway", silent, NOW, POLICY) == "no answer on /healthz for 21s"


def test_a_gateway_gets_its_start_timeout_to_answer_at_all() -> None:
    assert unhealthy("gateway", Observation(started_at=NOW - 100), NOW, POLICY) is None
    assert unhealthy("gateway", Observation(started_at=NOW - 121), NOW, POLICY) == (
        "no answer on /healthz 121s after start")


def test_a_broker_is_judged_by_readiness() -> None:
    assert unhealthy("kafka", Observation(started_at=NOW - 121), NOW, POLICY) == (
        "not ready 121s after start")
    assert unhealthy("kafka", Observation(started_at=NOW - 9999, ready=True), NOW,
                     POLICY) is None


@pytest.mark.parametrize(("returncode", "reason"), [
    (0, "exit code 0"), (1, "exit code 1"), (-9, "SIGKILL"), (-15, "SIGTERM"),
    (-11, "SIGSEGV"), (-200, "signal 200"),
])
def test_exit_reasons(returncode: int, reason: str) -> None:
    assert exit_reason(returncode) == reason


def supervisor(state: str) -> SupervisorState:
    return SupervisorState(pid=7, pid_started=1, started_at=NOW - 100, state=state)


def test_a_supervisor_is_believed_only_while_it_holds_its_lock() -> None:
    assert supervisor_state(supervisor("running"), lock_held=True) == "running"
    assert supervisor_state(supervisor("running"), lock_held=False) == "dead"
    assert supervisor_state(supervisor("stopping"), lock_held=False) == "dead"
    assert supervisor_state(supervisor("stopped"), lock_held=False) == "stopped"
    assert supervisor_state(supervisor("failed"), lock_held=False) == "failed"


RUNNING = ComponentState(state="running", pid=42, pid_started=9, started_at=NOW - 30,
                         ready_at=NOW - 25, restarts=1, last_exit=Exit("SIGKILL", NOW - 31),
                         probe="ok")


def test_a_component_state_comes_from_its_supervisor_and_the_kernel() -> None:
    assert component_state(RUNNING, supervised=True, alive=True) == "running"
    # died an instant ago, not reaped yet: a zombie must not count as running
    assert component_state(RUNNING, supervised=True, alive=False) == "restarting"
    assert component_state(RUNNING, supervised=False, alive=True) == "unsupervised"
    assert component_state(RUNNING, supervised=False, alive=False) == "stopped"
    waiting = ComponentState(state="restarting", restart_at=NOW + 2)
    assert component_state(waiting, supervised=True, alive=False) == "restarting"


def test_the_view_of_a_running_component() -> None:
    assert component_view(RUNNING, "running", NOW) == {
        "state": "running", "pid": 42, "uptime_s": 30.0, "restarts": 1,
        "last_exit": {"reason": "SIGKILL", "at": NOW - 31, "ago_s": 31.0},
        "restart_in_s": None, "probe": "ok",
    }


def test_the_view_of_a_component_that_is_not_running_has_no_pid_or_uptime() -> None:
    waiting = ComponentState(state="restarting", restarts=2, restart_at=NOW + 2.5,
                             last_exit=Exit("unhealthy: no answer on /healthz for 21s", NOW))
    view = component_view(waiting, "restarting", NOW)
    assert (view["pid"], view["uptime_s"], view["restart_in_s"]) == (None, None, 2.5)
    gone = component_view(RUNNING, "stopped", NOW)
    assert (gone["pid"], gone["uptime_s"], gone["probe"]) == (None, None, None)
    # left behind by a dead supervisor: running, but nobody checks its health any more
    orphan = component_view(RUNNING, "unsupervised", NOW)
    assert (orphan["pid"], orphan["probe"]) == (42, None)
