"""Noticing records the worker's consumers skipped, and a consumer that stopped.

Two failures seen here of Faust's consumer, which read the worker's topics until 2026-12;
the consumer groups that replaced it (``pipeline.kafka.group``) are watched the same way:

- **Skipped records.** Faust's fetch loop could mark a record read without it reaching an
  agent, when a rebalance suspended the flow; when no later record of its partition came,
  nothing revealed the loss. So, per partition this
  worker is assigned: records exist past the point it reached (the last offset its agents
  received, or the group's committed offset), and nothing came from that partition for
  ``resync_after_s``: the watchdog names the offset to read again from. Reading a record
  twice is harmless (``pipeline.finals``); not reading it is not.
- **A consumer that died silently** (faust-streaming#175): the process lives, its
  partitions stay assigned, nothing is consumed, and the lag grows. Work waiting while
  nothing moves for ``stall_after_s`` is a stall, unless the worker is saturated (its
  in-flight budget is full: busy, not stuck); so is a rebalance that has not ended after
  that long (no record flows during one). A stall is reported in the health file, and the
  supervisor restarts the worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

Partition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Verdict:
    stalled: bool
    lag: int  # records waiting in the partitions this worker is assigned
    idle_s: float  # since it last made progress
    reread: dict[Partition, int] = field(default_factory=dict)  # where to read again from


class Watchdog:
    def __init__(self, stall_after_s: float, resync_after_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_after_s = stall_after_s
        self.resync_after_s = resync_after_s
        self._clock = clock
        self._reached: dict[Partition, int] = {}
        self._moved: dict[Partition, float] = {}  # when each partition last moved
        self._moved_at = clock()
        self._rebalancing_since: float | None = None

    def rebalancing(self, now_rebalancing: bool) -> bool:
        """Whether a rebalance has gone on for longer than ``stall_after_s``."""
        if not now_rebalancing:
            self._rebalancing_since = None
            return False
        now = self._clock()
        if self._rebalancing_since is None:
            self._rebalancing_since = now
        return now - self._rebalancing_since > self.stall_after_s

    def observe(self, ends: Mapping[Partition, int], reached: Mapping[Partition, int],
                saturated: bool) -> Verdict:
        """``ends``: the end offset of each assigned partition; ``reached``: how far this
        worker got in each (the next offset it will read)."""
        now = self._clock()
        for p, offset in reached.items():
            if offset > self._reached.get(p, -1) or p not in self._moved:
                self._moved[p] = now
        if saturated or any(reached.get(p, 0) > self._reached.get(p, 0) for p in reached):
            self._moved_at = now
        self._reached = {**self._reached, **reached}
        waiting = {p: end - reached[p] for p, end in ends.items()
                   if p in reached and end > reached[p]}
        lag = sum(waiting.values())
        if lag == 0:
            self._moved_at = now  # nothing to do is not being stuck
        reread = {} if saturated else {
            p: reached[p] for p in waiting if now - self._moved[p] > self.resync_after_s}
        for p in reread:
            self._moved[p] = now  # give the re-read time before asking again
        idle = now - self._moved_at
        return Verdict(stalled=lag > 0 and idle > self.stall_after_s, lag=lag, idle_s=idle,
                       reread=reread)
