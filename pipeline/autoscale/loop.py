"""``faasflow autoscale``: every ``interval_s``, read the lag and the replicas of the
worker service, ask the policy (``pipeline.autoscale.policy``), and scale.

    LagSource ──lag──►  Autoscaler  ──replicas──► Scaler
    (Kafka: lag.WorkerLag)  │  ▲            (Docker Swarm: scaler.ServiceScaler)
                            ▼  │
                          Policy (pure)

Nothing here stops the loop: a lag or a replica count that cannot be read is logged as a
warning, changes nothing, and is tried again at the next interval; a failed scaling too.
Only at start-up does a service that does not exist, or an engine that is not a Swarm
manager, end the command (a configuration to fix, not an outage to wait out).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

from pipeline.autoscale.lag import WorkerLag
from pipeline.autoscale.policy import Action, Decision, Limits, Policy, Reading
from pipeline.autoscale.scaler import ServiceScaler
from pipeline.errors import FaasflowError, PermanentError, RetryableError
from pipeline.settings import AutoscaleSettings, Settings

log = logging.getLogger(__name__)


class LagSource(Protocol):
    async def read(self) -> Reading:
        """The lag now; raises ``RetryableError`` when it cannot be read."""
        ...

    async def close(self) -> None: ...


class Scaler(Protocol):
    """The worker service's replica count. Both calls raise ``RetryableError`` when the
    engine does not answer, ``PermanentError`` when the service cannot be scaled."""

    service: str

    async def replicas(self) -> int: ...

    async def scale(self, replicas: int) -> None: ...

    async def close(self) -> None: ...


def limits(settings: AutoscaleSettings) -> Limits:
    return Limits(settings.min_workers, settings.max_workers,
                  settings.target_lag_per_worker, settings.scale_down_after_s)


class Autoscaler:
    def __init__(self, settings: AutoscaleSettings, lag: LagSource, scaler: Scaler,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.policy = Policy(limits(settings))
        self._lag = lag
        self._scaler = scaler
        self._clock = clock
        self._ceiling: int | None = None

    async def check(self) -> None:
        """Start-up: the service can be scaled (``PermanentError`` when it cannot); an
        engine that does not answer yet is waited for by the loop (which says so)."""
        with contextlib.suppress(RetryableError):
            await self._scaler.replicas()

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self.step()
                except Exception:  # a bug must not stop the scaling: logged, tried again
                    log.exception("autoscaling step failed")
                await asyncio.sleep(self.settings.interval_s)
        finally:
            await self._lag.close()
            await self._scaler.close()

    async def step(self) -> Decision | None:
        """One reading, decision and scaling; None when the replicas could not be read."""
        service = self._scaler.service
        try:
            current = await self._scaler.replicas()
        except FaasflowError as exc:
            self.policy.forget()
            log.log(logging.ERROR if isinstance(exc, PermanentError) else logging.WARNING,
                    "cannot read the replicas of %s: %s; trying again in %.0fs", service,
                    exc.message, self.settings.interval_s)
            return None
        try:
            reading: Reading | None = await self._lag.read()
        except RetryableError as exc:
            log.warning("cannot read the consumer lag: %s; %s stays at %d", exc.message,
                        service, current)
            reading = None
        decision = self.policy.decide(self._clock(), current, reading)
        self._note_ceiling(decision, reading)
        _log(service, decision)
        if decision.replicas != current:
            try:
                await self._scaler.scale(decision.replicas)
            except FaasflowError as exc:
                log.warning("scaling %s from %d to %d failed: %s", service, current,
                            decision.replicas, exc.message)
        return decision

    def _note_ceiling(self, decision: Decision, reading: Reading | None) -> None:
        if reading is None or decision.ceiling == self._ceiling:
            return
        self._ceiling = decision.ceiling
        if decision.ceiling < self.settings.max_workers:
            log.info("at most %d workers, not max_workers %d: the invocations topic has %d "
                     "partitions, and a consumer group gives each to one member",
                     decision.ceiling, self.settings.max_workers, reading.partitions)


def _log(service: str, d: Decision) -> None:
    if d.action is Action.BLIND:
        log.info("%s: lag unknown, current %d: %s", service, d.current, d.action)
    elif d.action is Action.WAIT:
        log.info("%s: lag %d, current %d, desired %d: %s, scaling down in %.0fs if the lag "
                 "stays low", service, d.lag, d.current, d.desired, d.action, d.wait_s)
    elif d.action in (Action.UP, Action.DOWN):
        log.info("%s: lag %d, current %d, desired %d: %s to %d", service, d.lag, d.current,
                 d.desired, d.action, d.replicas)
    else:
        log.info("%s: lag %d, current %d, desired %d: %s", service, d.lag, d.current,
                 d.desired, d.action)


async def run(settings: Settings) -> None:
    """The loop of ``faasflow autoscale``, with the Kafka lag and the Swarm service."""
    config = settings.autoscale
    lag = WorkerLag(settings.kafka)
    scaler = ServiceScaler(config.service)
    autoscaler = Autoscaler(config, lag, scaler)
    log.info("autoscaling %s between %d and %d workers, %d records of lag a worker, every "
             "%.0fs, scaling down after %.0fs; lag of the groups %s", config.service,
             config.min_workers, config.max_workers, config.target_lag_per_worker,
             config.interval_s, config.scale_down_after_s,
             ", ".join(g.group for g in lag.groups))
    try:
        await autoscaler.check()
    except PermanentError:
        await lag.close()
        await scaler.close()
        raise
    await autoscaler.run()
