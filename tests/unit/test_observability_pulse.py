"""The pulse (``pipeline.observability.pulse``): rates between readings, percentiles over
the window as Prometheus estimates them, the broker down, and its followers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Generic, TypeVar

import pytest

from pipeline.errors import BrokerUnavailable
from pipeline.index.tally import BUCKETS, FunctionTally, Tally
from pipeline.observability.figures import Part, Streams
from pipeline.observability.pulse import (
    FOLLOWER_BACKLOG,
    FunctionPulse,
    Pulse,
    Sample,
    SourcePulse,
    quantile,
)

T = TypeVar("T")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Script(Generic[T]):
    """A read that answers what it is given next: a value, or an exception to raise."""

    def __init__(self, first: T) -> None:
        self.next: T | Exception = first

    async def read(self) -> T:
        if isinstance(self.next, Exception):
            raise self.next
        return self.next


class Readings:
    """In-memory figures: the parts read what their scripts say."""

    def __init__(self, clock: Clock) -> None:
        self.events: Script[Streams] = Script(Streams({}, {}))
        self.runs: Script[Tally] = Script({})
        self.streams = Part("kafka", self.events.read, clock, stale_after_s=6.0)
        self.tally = Part("index", self.runs.read, clock, stale_after_s=6.0)

    async def refresh(self, wait_s: float) -> None:
        await asyncio.wait([self.streams.poke(), self.tally.poke()], timeout=wait_s)


def runs(finished: int, failed: int = 0, durations: Mapping[float, int] | None = None
         ) -> FunctionTally:
    """``durations``: runs per bucket bound (``inf`` beyond the last)."""
    per_bucket = [0] * (len(BUCKETS) + 1)
    for bound, n in (durations or {}).items():
        per_bucket[len(BUCKETS) if bound == float("inf") else BUCKETS.index(bound)] += n
    cumulative = tuple(sum(per_bucket[:i + 1]) for i in range(len(per_bucket)))
    return FunctionTally({"succeeded": finished - failed, "failed": failed}, 0, 0.0, cumulative)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def readings(clock: Clock) -> Readings:
    return Readings(clock)


async def test_rates_are_taken_between_the_last_two_readings(clock: Clock,
                                                             readings: Readings) -> None:
    pulse = Pulse(readings, interval_s=2.0, clock=clock)
    readings.events.next = Streams({"orders": 10}, {"orders": 4})
    readings.runs.next = {"f": runs(5, 1)}
    first = await pulse.step()
    assert first.sources == {"orders": SourcePulse(0.0, 4)}  # one reading: no rate yet
    assert first.functions["f"].invocations_per_s == 0.0

    clock.now += 2.0
    readings.events.next = Streams({"orders": 30, "new": 3}, {"orders": 1})
    readings.runs.next = {"f": runs(15, 4), "g": runs(2)}
    second = await pulse.step()

    assert second.at == clock.now
    # a topic that appeared since counts from nothing; a source not committed in: no lag
    assert second.sources == {"orders": SourcePulse(10.0, 1), "new": SourcePulse(1.5, None)}
    assert second.functions["f"] == FunctionPulse(5.0, 1.5, 0.3, None, None)
    assert second.functions["g"] == FunctionPulse(1.0, 0.0, 0.0, None, None)
    assert pulse.history() == [first, second]


async def test_percentiles_cover_the_runs_of_the_window(clock: Clock,
                                                        readings: Readings) -> None:
    pulse = Pulse(readings, interval_s=2.0, history_s=10.0, clock=clock)
    readings.runs.next = {"f": runs(100, durations={60.0: 100})}  # before the window
    await pulse.step()
    for _ in range(3):
        clock.now += 2.0
        await pulse.step()
    clock.now += 2.0
    readings.runs.next = {"f": runs(200, durations={60.0: 100, 0.1: 50, 0.25: 49, 1.0: 1})}

    sample = await pulse.step()

    assert sample.functions["f"].p50_s == pytest.approx(0.1)  # the 50th of 100, in (0.05, 0.1]
    assert sample.functions["f"].p99_s == pytest.approx(0.25)  # the 99th: the last of (0.1, 0.25]
    clock.now += 12.0  # no run in the last 10 s: none to take percentiles of
    assert (await pulse.step()).functions["f"].p50_s is None


def test_quantiles_interpolate_within_a_bucket_as_histogram_quantile_does() -> None:
    cumulative = [0] * (len(BUCKETS) + 1)
    assert quantile(0.5, cumulative) is None
    one_second = BUCKETS.index(1.0)
    for i in range(one_second, len(cumulative)):
        cumulative[i] = 4  # four runs in (0.5, 1]
    assert quantile(0.5, cumulative) == pytest.approx(0.75)
    assert quantile(0.25, cumulative) == pytest.approx(0.625)
    cumulative[-1] = 8  # four more beyond the last bound
    assert quantile(0.99, cumulative) == BUCKETS[-1]


async def test_the_broker_down_shows_no_rate_and_no_lag_and_the_sampler_goes_on(
        clock: Clock, readings: Readings) -> None:
    pulse = Pulse(readings, interval_s=2.0, clock=clock)
    readings.events.next = Streams({"orders": 10}, {"orders": 4})
    await pulse.step()
    clock.now += 2.0
    readings.events.next = BrokerUnavailable("no broker at 127.0.0.1:9")

    sample = await pulse.step()

    assert sample.sources == {"orders": SourcePulse(0.0, None)}
    assert readings.streams.failing == "no broker at 127.0.0.1:9"
    json.dumps(sample.to_dict())  # JSON-ready as it is


async def test_a_part_not_read_for_a_while_is_stale(clock: Clock, readings: Readings) -> None:
    pulse = Pulse(readings, interval_s=2.0, clock=clock)
    readings.events.next = Streams({"orders": 10}, {"orders": 4})
    await pulse.step()
    clock.now += 2.0
    readings.events.next = Streams({"orders": 20}, {"orders": 4})
    await pulse.step()
    clock.now += 7.0  # reads stuck since (a broker that does not answer, not yet timed out)

    assert pulse.sample().sources == {"orders": SourcePulse(0.0, None)}


def test_a_sample_is_json_ready() -> None:
    sample = Sample(1.5, {"s": SourcePulse(2.0, None)},
                    {"f": FunctionPulse(1.0, 0.5, 0.5, 0.1, None)})
    assert json.loads(json.dumps(sample.to_dict())) == {
        "at": 1.5, "sources": {"s": {"events_per_s": 2.0, "lag": None}},
        "functions": {"f": {"invocations_per_s": 1.0, "errors_per_s": 0.5, "error_rate": 0.5,
                            "p50_s": 0.1, "p99_s": None}}}


async def test_every_follower_gets_each_sample_and_a_slow_one_loses_the_oldest(
        clock: Clock, readings: Readings) -> None:
    pulse = Pulse(readings, interval_s=0.01, clock=clock)
    keen, slow = pulse.follow(), pulse.follow()
    first_keen = asyncio.ensure_future(anext(keen))
    first_slow = asyncio.ensure_future(anext(slow))
    await asyncio.sleep(0)  # both wait on their queues now

    taken = []
    for n in range(FOLLOWER_BACKLOG + 5):
        clock.now = 1_000.0 + n
        sample = await asyncio.wait_for(pulse.step(), 1)  # never waits for a follower
        taken.append(sample.at if n == 0 else (await anext(keen)).at)
        if n == 0:
            assert (await first_keen).at == sample.at

    assert taken == [1_000.0 + n for n in range(FOLLOWER_BACKLOG + 5)]
    assert (await first_slow).at == 1_000.0
    behind = [(await anext(slow)).at for _ in range(FOLLOWER_BACKLOG)]
    assert behind == taken[-FOLLOWER_BACKLOG:]  # the oldest it had not taken were dropped

    await pulse.stop()
    with pytest.raises(StopAsyncIteration):
        await anext(keen)
    with pytest.raises(StopAsyncIteration):
        await anext(pulse.follow())  # a follower after the end ends at once
