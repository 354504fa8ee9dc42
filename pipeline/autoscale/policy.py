"""How many workers to run: a pure function of the lag, the count running and the time,
which is passed in (nothing here sleeps or reads a clock), so every rule is tested exactly.

    desired   ceil(lag / target_lag_per_worker), within [min_workers, ceiling]
    ceiling   max_workers, lowered to the partition count of the invocations topic (a
              consumer group gives each partition to one member: more members idle), never
              below min_workers
    up        at once, straight to desired
    down      only once every reading for ``scale_down_after_s`` asked for fewer workers
              than run, counting a reading's ask with headroom (``down_fill``: the lag must
              fit the fewer workers at 80% of their target); then straight to the most any
              of those readings asked for: one rebalance of the groups, not one per step
    no reading
              nothing changes, and the wait for a scale-down starts again (the lag was not
              seen to stay low)

The headroom and the wait are the hysteresis: with a target of 1000 records a worker,
three workers stay until the lag is below 1600 for the whole wait, and come back the
moment it is above 2000.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Limits:
    min_workers: int
    max_workers: int
    target_lag_per_worker: int
    scale_down_after_s: float
    down_fill: float = 0.8

    def __post_init__(self) -> None:
        if not 1 <= self.min_workers <= self.max_workers:
            raise ValueError(f"need 1 <= min_workers ({self.min_workers}) <= max_workers "
                             f"({self.max_workers})")
        if self.target_lag_per_worker < 1:
            raise ValueError("target_lag_per_worker must be at least 1")
        if self.scale_down_after_s < 0 or not 0 < self.down_fill <= 1:
            raise ValueError("need scale_down_after_s >= 0 and 0 < down_fill <= 1")

    def ceiling(self, partitions: int | None) -> int:
        """The most workers worth running when the invocations topic has ``partitions``
        (None: unknown, no cap)."""
        if partitions is None or partitions < 1:
            return self.max_workers
        return max(self.min_workers, min(self.max_workers, partitions))


@dataclass(frozen=True, slots=True)
class Reading:
    """The lag summed over the worker's consumer groups, and the partition count of the
    invocations topic (None when it does not exist yet)."""

    lag: int
    partitions: int | None


class Action(StrEnum):
    UP = "up"
    DOWN = "down"
    HOLD = "hold"  # the count running is right
    WAIT = "wait"  # fewer would do, for less than scale_down_after_s so far
    BLIND = "blind"  # no reading: nothing changes


@dataclass(frozen=True, slots=True)
class Decision:
    lag: int | None
    current: int
    desired: int  # what the lag asks for, within [min_workers, ceiling]
    replicas: int  # what to run now: ``current`` unless the action is up or down
    ceiling: int
    action: Action
    wait_s: float = 0.0  # with WAIT: how long until the scale-down, if the lag stays low


class Policy:
    """Decides, reading by reading; remembers only the scale-down being waited for."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._lower_since: float | None = None
        self._lower_from = 0  # the count running when the wait began
        self._lower_most = 0  # the most workers asked for since ``_lower_since``

    def forget(self) -> None:
        """The lag or the count running could not be read: a scale-down waits anew."""
        self._lower_since = None

    def decide(self, now: float, current: int, reading: Reading | None) -> Decision:
        limits = self.limits
        if reading is None:
            self.forget()
            return Decision(None, current, current, current, limits.ceiling(None),
                            Action.BLIND)
        ceiling = limits.ceiling(reading.partitions)
        desired = self._within(reading.lag / limits.target_lag_per_worker, ceiling)
        if desired > current:
            self.forget()
            return Decision(reading.lag, current, desired, desired, ceiling, Action.UP)
        asks = self._within(reading.lag / (limits.target_lag_per_worker * limits.down_fill),
                            ceiling)
        if asks >= current:
            self.forget()
            return Decision(reading.lag, current, desired, current, ceiling, Action.HOLD)
        if self._lower_since is None or self._lower_from != current:
            # (a count changed by someone else meanwhile starts the wait over)
            self._lower_since, self._lower_from, self._lower_most = now, current, asks
        self._lower_most = max(self._lower_most, asks)
        left = self._lower_since + limits.scale_down_after_s - now
        if left > 0:
            return Decision(reading.lag, current, desired, current, ceiling, Action.WAIT,
                            wait_s=left)
        self.forget()
        return Decision(reading.lag, current, desired, self._lower_most, ceiling, Action.DOWN)

    def _within(self, workers: float, ceiling: int) -> int:
        return max(self.limits.min_workers, min(ceiling, math.ceil(workers)))
