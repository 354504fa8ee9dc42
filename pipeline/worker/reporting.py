"""The worker's health report, written every few seconds for its supervisor
(``pipeline.health``): starting, ok, degraded (a view or the broker failing) or stalled
(work waiting and nothing moving: ``pipeline.worker.watchdog``)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING, Any, Protocol

from pipeline import health
from pipeline.deadletters import Origin
from pipeline.errors import BrokerUnavailable
from pipeline.kafka import GroupProbe
from pipeline.worker.watchdog import Partition, Verdict, Watchdog

if TYPE_CHECKING:
    from pipeline.worker.app import Worker

log = logging.getLogger(__name__)

PROBE_EVERY_S = 3.0
RECENT_FAILURE_S = 15.0


class Consumption(Protocol):
    """A consumer group member of the worker's, as the watchdog sees it."""

    @property
    def group(self) -> str: ...

    @property
    def assigned(self) -> frozenset[Partition]: ...

    @property
    def rebalancing(self) -> bool: ...

    async def seek(self, partition: Partition, offset: int) -> None: ...


class HealthReporter:
    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self._watchdog = Watchdog(worker.settings.worker.stall_after_s)
        self._received: dict[Partition, int] = {}
        self._verdict: Verdict | None = None
        self._probe_problem: str | None = None
        self._stuck_rebalancing = False
        self.path = health.health_file(worker.settings.state_dir, "worker", os.getpid())

    def received(self, origin: Origin) -> None:
        """An agent took the record at ``origin``."""
        self._received[(origin.topic, origin.partition)] = origin.offset + 1

    async def run(self) -> None:
        """Report until cancelled; a failure here is a problem to report, never a crash."""
        probes: dict[str, GroupProbe] = {}
        probed_at = 0.0
        try:
            while True:
                if time.monotonic() - probed_at > PROBE_EVERY_S and self._worker.ready:
                    probed_at = time.monotonic()
                    try:
                        await self._probe(probes)
                        self._probe_problem = None
                    except BrokerUnavailable as exc:
                        self._probe_problem = exc.message
                    except Exception as exc:
                        log.exception("probing the consumer group failed")
                        self._probe_problem = f"probing the consumer group failed: {exc!r}"
                try:
                    health.write(self.path, self.report())
                except OSError as exc:
                    log.warning("cannot write %s: %s", self.path, exc)
                await asyncio.sleep(health.INTERVAL_S)
        finally:
            self.path.unlink(missing_ok=True)
            for probe in probes.values():
                await probe.stop()

    async def _probe(self, probes: dict[str, GroupProbe]) -> None:
        worker = self._worker
        rebalancing = any(c.rebalancing for c in worker.consumptions)
        self._stuck_rebalancing = self._watchdog.rebalancing(rebalancing)
        if self._stuck_rebalancing:
            log.error("a rebalance has not ended for %.0fs", self._watchdog.stall_after_s)
        if rebalancing:
            return
        ends: dict[Partition, int] = {}
        reached: dict[Partition, int] = {}
        for consumption in worker.consumptions:
            probe = probes.get(consumption.group)
            if probe is None:
                probe = GroupProbe(worker.settings.kafka, consumption.group)
                await probe.start()
                probes[consumption.group] = probe
            assigned = consumption.assigned
            group_ends, committed = await probe.offsets(assigned)
            ends.update(group_ends)
            reached.update({p: max(self._received.get(p, 0), committed.get(p, 0))
                            for p in assigned})
        busy = [budget.was_full() for budget in (worker.inflight, worker.callback_budget)]
        self._verdict = self._watchdog.observe(ends, reached, any(busy))
        if self._verdict.stalled:
            log.error("consumers stalled: %d records waiting, no progress for %.0fs",
                      self._verdict.lag, self._verdict.idle_s)
        for (topic, partition), offset in self._verdict.reread.items():
            for consumption in worker.consumptions:
                if (topic, partition) in consumption.assigned and not consumption.rebalancing:
                    log.warning("%s[%d]: records from offset %d were not delivered; "
                                "reading them again", topic, partition, offset)
                    await consumption.seek((topic, partition), offset)

    def report(self) -> health.Health:
        worker = self._worker
        problems = [p for p in (view.problem() for view in worker.views) if p]
        if worker.connectors is not None:
            problems += worker.connectors.problems()
        if worker.replays is not None:
            problems += worker.replays.problems()
        if self._probe_problem:
            problems.append(self._probe_problem)
        failed_at = worker.writer.failed_at
        if failed_at is not None and time.monotonic() - failed_at < RECENT_FAILURE_S:
            problems.append("writes to Kafka are failing")
        details: dict[str, Any] = {
            "inflight": {"records": worker.inflight.records, "bytes": worker.inflight.bytes},
            "functions": worker.executor.admission.load() if worker.executor else {},
            "recent_results": len(worker.finals),
        }
        if self._verdict is not None:
            details.update(lag=self._verdict.lag, idle_s=round(self._verdict.idle_s, 1))
        if not worker.ready:
            status = "starting"
        elif self._stuck_rebalancing or (self._verdict is not None and self._verdict.stalled):
            status = "stalled"
        else:
            status = "degraded" if problems else "ok"
        return health.Health(status=status, problems=tuple(problems), details=details)
