"""The circuit breaker of a target: closed, paused after K failures, one probe after the
cool-down, closed by a success or by hand, and what other processes published."""

from __future__ import annotations

from pipeline.callbacks.breaker import Breaker, Circuit
from tests.unit.support import Clock

ORIGIN = "https://hooks.example.com:443"


def breaker(clock: Clock) -> Breaker:
    return Breaker(threshold=3, cooldown_s=60, clock=clock)


def test_k_consecutive_failures_pause_the_target() -> None:
    clock = Clock(1000.0)
    b = breaker(clock)

    assert b.failed(ORIGIN, "HTTP 500") is None
    assert b.failed(ORIGIN, "HTTP 500") is None
    paused = b.failed(ORIGIN, "HTTP 503")

    assert paused is not None
    assert (paused.circuit, paused.failures, paused.paused_at, paused.reason) == (
        Circuit.PAUSED, 3, 1000.0, "HTTP 503")
    assert not b.admits(ORIGIN)
    assert b.wait_s(ORIGIN) == 60


def test_a_success_resets_the_count() -> None:
    b = breaker(Clock())
    b.failed(ORIGIN, "x")
    b.failed(ORIGIN, "x")

    assert b.succeeded(ORIGIN) is None  # no change of circuit: nothing to publish
    assert b.failed(ORIGIN, "x") is None
    assert b.admits(ORIGIN)


def test_after_the_cool_down_one_probe_goes_and_its_success_closes() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.failed(ORIGIN, "x")
    clock.now += 59

    assert not b.admits(ORIGIN)
    clock.now += 1
    assert b.admits(ORIGIN)  # the probe
    assert not b.admits(ORIGIN)  # the others wait for its outcome
    closed = b.succeeded(ORIGIN)
    assert closed is not None
    assert closed.circuit is Circuit.CLOSED
    assert b.admits(ORIGIN)
    assert b.admits(ORIGIN)


def test_a_failed_probe_pauses_again_for_a_whole_cool_down() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.failed(ORIGIN, "x")
    clock.now += 60
    assert b.admits(ORIGIN)

    again = b.failed(ORIGIN, "still down")

    assert again is not None
    assert again.circuit is Circuit.PAUSED
    assert again.paused_at == clock.now
    assert not b.admits(ORIGIN)


def test_an_abandoned_probe_lets_another_go() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.failed(ORIGIN, "x")
    clock.now += 60
    assert b.admits(ORIGIN)

    b.abandoned(ORIGIN)

    assert b.admits(ORIGIN)


def test_states_published_elsewhere_apply_here() -> None:
    clock = Clock()
    elsewhere, here = breaker(clock), breaker(clock)
    for _ in range(3):
        paused = elsewhere.failed(ORIGIN, "x")
    assert paused is not None

    here.apply(ORIGIN.encode(), paused.encode())
    assert not here.admits(ORIGIN)
    here.apply(ORIGIN.encode(), Breaker.resumed(ORIGIN).encode())
    assert here.admits(ORIGIN)
    assert here.state(ORIGIN).reason == "resumed by hand"


def test_targets_do_not_share_a_breaker() -> None:
    b = breaker(Clock())
    for _ in range(3):
        b.failed(ORIGIN, "x")

    assert b.admits("https://other.example.com:443")
