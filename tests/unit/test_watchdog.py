from __future__ import annotations

from pipeline.worker.watchdog import Watchdog

from .support import Clock

P = ("t.invocations", 0)


def test_work_waiting_and_nothing_moving_is_a_stall() -> None:
    clock = Clock()
    dog = Watchdog(stall_after_s=60, clock=clock)
    dog.observe({P: 100}, {P: 10}, saturated=False)

    clock.now = 61
    verdict = dog.observe({P: 120}, {P: 10}, saturated=False)

    assert verdict.stalled
    assert verdict.lag == 110


def test_progress_is_not_a_stall() -> None:
    clock = Clock()
    dog = Watchdog(stall_after_s=60, clock=clock)
    dog.observe({P: 100}, {P: 10}, saturated=False)

    clock.now = 61
    assert not dog.observe({P: 100}, {P: 11}, saturated=False).stalled


def test_a_saturated_worker_is_busy_not_stuck() -> None:
    clock = Clock()
    dog = Watchdog(stall_after_s=60, clock=clock)
    dog.observe({P: 100}, {P: 10}, saturated=True)

    clock.now = 61
    assert not dog.observe({P: 100}, {P: 10}, saturated=True).stalled


def test_nothing_to_do_is_not_a_stall() -> None:
    clock = Clock()
    dog = Watchdog(stall_after_s=60, clock=clock)
    dog.observe({P: 10}, {P: 10}, saturated=False)

    clock.now = 600
    verdict = dog.observe({P: 10}, {P: 10}, saturated=False)
    assert not verdict.stalled
    assert verdict.idle_s == 0.0

    clock.now = 630  # work arrives; the clock starts now, not at the last progress
    assert not dog.observe({P: 11}, {P: 10}, saturated=False).stalled


def test_records_past_what_was_received_are_read_again_once_the_partition_is_quiet() -> None:
    """A record Faust marked read without delivering it, with none after it to show the gap:
    the watchdog names where to read again from."""
    clock = Clock()
    dog = Watchdog(stall_after_s=60, resync_after_s=5, clock=clock)
    other = ("t.events.x", 1)
    dog.observe({P: 11, other: 5}, {P: 10, other: 5}, saturated=False)

    clock.now = 4
    assert dog.observe({P: 11, other: 5}, {P: 10, other: 5}, saturated=False).reread == {}
    clock.now = 6
    assert dog.observe({P: 11, other: 5}, {P: 10, other: 5}, saturated=False).reread == {P: 10}
    clock.now = 7  # given time to re-read before it is asked again
    assert dog.observe({P: 11, other: 5}, {P: 10, other: 5}, saturated=False).reread == {}


def test_a_partition_that_moves_is_not_read_again() -> None:
    clock = Clock()
    dog = Watchdog(stall_after_s=60, resync_after_s=5, clock=clock)
    for second in range(10):
        clock.now = second
        assert dog.observe({P: 100}, {P: 10 + second}, saturated=False).reread == {}


def test_a_saturated_worker_reads_nothing_again() -> None:
    clock = Clock()
    dog = Watchdog(stall_after_s=60, resync_after_s=5, clock=clock)
    dog.observe({P: 11}, {P: 10}, saturated=True)

    clock.now = 30
    assert dog.observe({P: 11}, {P: 10}, saturated=True).reread == {}


def test_a_rebalance_that_does_not_end_is_a_stall() -> None:
    clock = Clock()
    dog = Watchdog(stall_after_s=60, clock=clock)

    assert not dog.rebalancing(True)
    clock.now = 59
    assert not dog.rebalancing(True)
    clock.now = 61
    assert dog.rebalancing(True)
    assert not dog.rebalancing(False)
    assert not dog.rebalancing(True)  # a new rebalance starts its own clock
