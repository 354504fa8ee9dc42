"""The pulse: every ``interval_s`` a ``Sample`` of how fast events arrive and functions run,
for the dashboard's live charts, kept for ``history_s`` and handed to every follower.

    Figures (kafka, index parts) ──refresh──► Pulse ──Sample──► history (the last N)
                                                      └───────► each follower's queue

Rates are taken between a part's last two readings (``figures.Part``): events per second
from the event topics' end offsets, invocations and errors per second from the index's
totals of the Results that ended. Percentiles come from the totals' duration buckets over
the window (``history_s``), interpolated within a bucket as Prometheus'
``histogram_quantile`` does, so the dashboard and Grafana agree. A part that is not up (the
broker down; ``figures.Part``) shows no rate and no lag (``None``) until it is; the sampler
goes on.

A follower has a small queue of its own: one that does not keep up loses the oldest samples
it has not taken, and the sampler never waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from pipeline.index.tally import BUCKETS, FunctionTally, Tally
from pipeline.observability.figures import Part, Streams, Timed

log = logging.getLogger(__name__)

FOLLOWER_BACKLOG = 8  # samples a follower may leave untaken before it loses the oldest
NO_RUNS = FunctionTally()


@dataclass(frozen=True)
class SourcePulse:
    events_per_s: float  # new events on the source's topic over the last interval
    lag: int | None  # the starter group's lag on it (None when unknown)


@dataclass(frozen=True)
class FunctionPulse:
    invocations_per_s: float  # Results finished over the interval
    errors_per_s: float  # of those, not succeeded
    error_rate: float  # errors / invocations over the interval (0.0 when none)
    p50_s: float | None
    p99_s: float | None  # over the last ~5 minutes of runs (history_s)


@dataclass(frozen=True)
class Sample:
    at: float  # unix seconds
    sources: dict[str, SourcePulse]
    functions: dict[str, FunctionPulse]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for Server-Sent Events."""
        return asdict(self)


class Readings(Protocol):
    """What the pulse reads (``figures.Figures``)."""

    streams: Part[Streams]
    tally: Part[Tally]

    async def refresh(self, wait_s: float) -> None: ...


def quantile(q: float, cumulative: Sequence[int]) -> float | None:
    """The ``q`` quantile of durations counted in ``BUCKETS`` (cumulative, the last one
    ``+Inf``), as ``histogram_quantile`` estimates it; None without any."""
    total = cumulative[-1]
    if total == 0:
        return None
    rank = q * total
    bucket = next(i for i, count in enumerate(cumulative) if count >= rank)
    if bucket == len(BUCKETS):  # beyond the last bound: the last bound is all one knows
        return BUCKETS[-1]
    lower, below = (BUCKETS[bucket - 1], cumulative[bucket - 1]) if bucket else (0.0, 0)
    inside = cumulative[bucket] - below
    return lower + (BUCKETS[bucket] - lower) * (rank - below) / inside


def source_pulses(part: Part[Streams], fresh: bool) -> dict[str, SourcePulse]:
    """Each source's events per second between the part's last two readings, and its lag;
    neither when the part is not ``fresh``."""
    after, before = part.latest, part.previous
    if after is None:
        return {}
    span = after.at - before.at if before is not None else 0.0
    pulses = {}
    for source, written in after.value.events.items():
        rate = 0.0
        if fresh and before is not None and span > 0:  # a new topic counts from nothing
            rate = max(0, written - before.value.events.get(source, 0)) / span
        pulses[source] = SourcePulse(rate, after.value.lag.get(source) if fresh else None)
    return pulses


def function_pulses(part: Part[Tally], fresh: bool,
                    window_start: Timed[Tally] | None) -> dict[str, FunctionPulse]:
    """Each function's Results and errors per second between the part's last two readings
    (none when the part is not ``fresh``), and its percentiles since ``window_start``."""
    after, before = part.latest, part.previous
    if after is None:
        return {}
    span = after.at - before.at if before is not None else 0.0
    pulses = {}
    for function, now in after.value.items():
        runs = errors = 0.0
        if fresh and before is not None and span > 0:
            then = before.value.get(function, NO_RUNS)
            runs = max(0, now.finished - then.finished) / span
            errors = min(runs, max(0, now.failed - then.failed) / span)
        base = window_start.value.get(function, NO_RUNS) if window_start else NO_RUNS
        window = [max(0, n - b) for n, b in zip(now.buckets, base.buckets, strict=True)]
        pulses[function] = FunctionPulse(runs, errors, errors / runs if runs else 0.0,
                                         quantile(0.5, window), quantile(0.99, window))
    return pulses


class Pulse:
    def __init__(self, readings: Readings, interval_s: float = 2.0, history_s: float = 300.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.interval_s = interval_s
        self.history_s = history_s
        self._readings = readings
        self._clock = clock
        self._samples: deque[Sample] = deque(maxlen=max(1, round(history_s / interval_s)))
        self._tallies: deque[Timed[Tally]] = deque()  # the window's index readings
        self._followers: set[asyncio.Queue[Sample | None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    def history(self) -> list[Sample]:
        """The samples of the last ``history_s``, oldest first."""
        return list(self._samples)

    async def follow(self) -> AsyncIterator[Sample]:
        """Each new sample, until the pulse stops."""
        queue: asyncio.Queue[Sample | None] = asyncio.Queue(FOLLOWER_BACKLOG)
        self._followers.add(queue)
        try:
            while not self._stopped and (sample := await queue.get()) is not None:
                yield sample
        finally:
            self._followers.discard(queue)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pulse")

    async def stop(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for queue in self._followers:
            _offer(queue, None)

    async def _run(self) -> None:
        failing = False
        while True:
            started = time.monotonic()
            try:
                await self.step()
                failing = False
            except Exception:  # a bug: said once, and the sampler goes on
                if not failing:
                    log.exception("pulse: a sample failed")
                failing = True
            await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))

    async def step(self) -> Sample:
        """Read the figures (waiting at most half an interval), sample, hand it out."""
        await self._readings.refresh(self.interval_s / 2)
        sample = self.sample()
        self._samples.append(sample)
        for queue in self._followers:
            _offer(queue, sample)
        return sample

    def sample(self) -> Sample:
        now = self._clock()
        streams, tally = self._readings.streams, self._readings.tally
        latest = tally.latest
        if latest is not None and (not self._tallies or self._tallies[-1] is not latest):
            self._tallies.append(latest)
        while len(self._tallies) > 1 and self._tallies[0].at < now - self.history_s:
            self._tallies.popleft()
        return Sample(now, source_pulses(streams, streams.up),
                      function_pulses(tally, tally.up,
                                      self._tallies[0] if self._tallies else None))


def _offer(queue: asyncio.Queue[Sample | None], item: Sample | None) -> None:
    """Put ``item`` in ``queue``, making room by dropping its oldest when it is full."""
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)
