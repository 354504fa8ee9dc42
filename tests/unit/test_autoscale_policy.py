"""The autoscaler's policy (``pipeline.autoscale.policy``): time is passed in, so every
rule is checked at its exact second."""

from __future__ import annotations

import pytest

from pipeline.autoscale.policy import Action, Limits, Policy, Reading

LIMITS = Limits(min_workers=1, max_workers=5, target_lag_per_worker=1000,
                scale_down_after_s=30)


def lag(records: int, partitions: int | None = 8) -> Reading:
    return Reading(records, partitions)


def test_scales_up_at_once_straight_to_what_the_lag_asks() -> None:
    decision = Policy(LIMITS).decide(0, 1, lag(3500))
    assert (decision.action, decision.desired, decision.replicas) == (Action.UP, 4, 4)


def test_holds_when_the_count_running_fits_the_lag() -> None:
    decision = Policy(LIMITS).decide(0, 2, lag(1500))
    assert (decision.action, decision.replicas) == (Action.HOLD, 2)


def test_never_more_than_max_nor_fewer_than_min() -> None:
    assert Policy(LIMITS).decide(0, 1, lag(10**9)).replicas == 5
    assert Policy(LIMITS).decide(0, 0, lag(0)).replicas == 1  # below min: up at once
    policy = Policy(LIMITS)
    assert policy.decide(0, 3, lag(0)).action is Action.WAIT
    assert policy.decide(30, 3, lag(0)).replicas == 1


def test_scales_down_only_after_the_lag_stayed_low_for_the_wait() -> None:
    policy = Policy(LIMITS)
    for now in (0, 10, 29.9):
        decision = policy.decide(now, 4, lag(500))
        assert (decision.action, decision.replicas) == (Action.WAIT, 4)
    assert decision.wait_s == pytest.approx(0.1)
    decision = policy.decide(30, 4, lag(500))
    assert (decision.action, decision.replicas) == (Action.DOWN, 1)


def test_scales_down_to_the_most_any_reading_of_the_wait_asked_for() -> None:
    policy = Policy(LIMITS)
    policy.decide(0, 4, lag(100))
    policy.decide(10, 4, lag(2000))  # asks for 3 (2000 at 80% of 1000 a worker)
    decision = policy.decide(30, 4, lag(100))
    assert (decision.action, decision.replicas) == (Action.DOWN, 3)


def test_a_reading_that_needs_the_workers_running_starts_the_wait_over() -> None:
    policy = Policy(LIMITS)
    policy.decide(0, 3, lag(500))
    assert policy.decide(20, 3, lag(2900)).action is Action.HOLD
    assert policy.decide(40, 3, lag(500)).action is Action.WAIT
    assert policy.decide(69, 3, lag(500)).action is Action.WAIT
    assert policy.decide(70, 3, lag(500)).action is Action.DOWN


def test_hysteresis_a_lag_just_under_the_boundary_keeps_the_workers() -> None:
    """3 workers come at a lag above 2000; they stay until it is below 1600, so a lag
    going to and fro around 2000 does not make workers come and go."""
    policy = Policy(LIMITS)
    assert policy.decide(0, 2, lag(2001)).replicas == 3
    for now in range(0, 120, 5):
        decision = policy.decide(now, 3, lag(1999 if now % 10 else 1700))
        assert decision.action is Action.HOLD
    assert policy.decide(200, 3, lag(1599)).action is Action.WAIT


def test_no_more_workers_than_the_invocations_topic_has_partitions() -> None:
    decision = Policy(LIMITS).decide(0, 1, lag(10**6, partitions=2))
    assert (decision.ceiling, decision.replicas) == (2, 2)
    # workers beyond the partitions go, after the wait
    policy = Policy(LIMITS)
    assert policy.decide(0, 4, lag(10**6, partitions=2)).action is Action.WAIT
    assert policy.decide(30, 4, lag(10**6, partitions=2)).replicas == 2


def test_the_partition_cap_never_goes_below_min_and_an_unknown_count_caps_nothing() -> None:
    limits = Limits(min_workers=3, max_workers=5, target_lag_per_worker=1000,
                    scale_down_after_s=30)
    assert limits.ceiling(2) == 3
    assert limits.ceiling(None) == 5
    assert Policy(limits).decide(0, 1, lag(10**6, partitions=None)).replicas == 5


def test_a_failed_lag_reading_changes_nothing_and_restarts_the_wait() -> None:
    policy = Policy(LIMITS)
    assert policy.decide(0, 4, lag(0)).action is Action.WAIT
    decision = policy.decide(20, 4, None)
    assert (decision.action, decision.replicas, decision.lag) == (Action.BLIND, 4, None)
    assert policy.decide(30, 4, lag(0)).action is Action.WAIT  # not seen low since 0
    assert policy.decide(60, 4, lag(0)).action is Action.DOWN


def test_a_failed_reading_does_not_scale_up_either() -> None:
    policy = Policy(LIMITS)
    assert policy.decide(0, 0, None).replicas == 0


def test_a_count_changed_by_someone_else_starts_the_wait_over() -> None:
    policy = Policy(LIMITS)
    policy.decide(0, 5, lag(3500))  # asks for 5 at 80%: hold
    policy.decide(1, 5, lag(2500))  # asks for 4: wait
    policy.decide(20, 3, lag(100))  # scaled to 3 by hand meanwhile
    assert policy.decide(31, 3, lag(100)).action is Action.WAIT
    decision = policy.decide(50, 3, lag(100))
    assert (decision.action, decision.replicas) == (Action.DOWN, 1)


def test_no_wait_scales_down_at_once() -> None:
    limits = Limits(min_workers=1, max_workers=5, target_lag_per_worker=1000,
                    scale_down_after_s=0)
    assert Policy(limits).decide(0, 4, lag(0)).replicas == 1


@pytest.mark.parametrize("bad", [
    dict(min_workers=0), dict(min_workers=4, max_workers=3), dict(target_lag_per_worker=0),
    dict(scale_down_after_s=-1), dict(down_fill=0), dict(down_fill=1.5),
])
def test_limits_refuse_what_cannot_work(bad: dict[str, float]) -> None:
    values = dict(min_workers=1, max_workers=5, target_lag_per_worker=1000,
                  scale_down_after_s=30) | bad
    with pytest.raises(ValueError, match=r"need|must"):
        Limits(**values)  # type: ignore[arg-type]
