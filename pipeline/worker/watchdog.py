"""Noticing a worker whose consumers stopped while work waits.

Faust users report consumers that die silently (faust-streaming#175): the process lives,
its partitions stay assigned, nothing is consumed, and the lag grows. The watchdog
compares, for the partitions this worker is assigned, where the log ends with where this
worker got to (the last offset its agents received, or the group's committed offset).
Work waiting while nothing moves for ``stall_after_s`` is a stall, unless the worker is
saturated (its in-flight budget is full: busy, not stuck). A stall is reported in the
health file, and the supervisor restarts the worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

Partition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Verdict:
    stalled: bool
    lag: int  # records waiting in the partitions this worker is assigned
    idle_s: float  # since it last made progress


class Watchdog:
    def __init__(self, stall_after_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_after_s = stall_after_s
        self._clock = clock
        self._reached: dict[Partition, int] = {}
        self._moved_at = clock()

    def observe(self, ends: Mapping[Partition, int], reached: Mapping[Partition, int],
                saturated: bool) -> Verdict:
        """``ends``: the end offset of each assigned partition; ``reached``: how far this
        worker got in each (the next offset it will read)."""
        now = self._clock()
        if any(reached.get(p, 0) > self._reached.get(p, 0) for p in reached) or saturated:
            self._moved_at = now
        self._reached = {**self._reached, **reached}
        lag = sum(max(0, end - reached.get(p, end)) for p, end in ends.items())
        idle = now - self._moved_at
        if lag == 0:
            self._moved_at = now  # nothing to do is not being stuck
            idle = 0.0
        return Verdict(stalled=lag > 0 and idle > self.stall_after_s, lag=lag, idle_s=idle)
