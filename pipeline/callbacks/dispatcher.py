"""The dispatcher: each final Result to its callback URL and its function's sinks.

    results topic ─► handle(result) ─► targets: callback_url, sinks (none for shadow runs)
                                    ─► skip the settled ones (``Ledger``) and those in flight
                                    ─► per target: wait while its breaker is paused,
                                       POST in its origin's lane, retry with backoff,
                                       record every attempt ─► topics.callbacks

Each (Result, target) is a task of its own, and each origin has its own lane (at most
``per_target`` POSTs at once): a slow or failing target holds only its own deliveries.
``handle`` returns once every delivery of the Result is settled; the worker acknowledges
the Result then, so a worker that dies mid-way delivers again after a restart what was
not settled (at least once: receivers dedupe on ``webhook-id``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Protocol

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from pipeline.callbacks.breaker import Breaker, TargetState
from pipeline.callbacks.guard import Refused, endpoint
from pipeline.callbacks.records import (
    CALLBACK_TARGET,
    Attempt,
    Delivery,
    Kind,
    Ledger,
    State,
    Target,
)
from pipeline.callbacks.sender import Sender
from pipeline.callbacks.signing import message_id, signed_headers
from pipeline.executor import durably
from pipeline.finals import CALLBACK_HEADER, FINAL, FUNCTION_HEADER, STATUS_HEADER
from pipeline.observability.logs import log_context
from pipeline.records import Result, dumps, utc_now
from pipeline.settings import CallbackSettings
from pipeline.specs import Sink

log = logging.getLogger(__name__)

PAUSED_POLL_S = 1.0  # how often a delivery waiting for a paused target looks again


class Journal(Protocol):
    async def delivery(self, delivery: Delivery) -> None:
        """Write the delivery's record; ``BrokerUnavailable`` if not acknowledged."""
        ...

    async def target(self, state: TargetState) -> None:
        """Write a target's breaker state; ``BrokerUnavailable`` if not acknowledged."""
        ...


def retry_stop(config: CallbackSettings, made: int = 0) -> stop_base:
    """After ``max_attempts`` in all (``made`` of them by an earlier worker), or once
    ``max_age_s`` has passed."""
    left = max(1, config.max_attempts - made)
    return stop_after_attempt(left) | stop_after_delay(config.max_age_s)


def retry_wait(config: CallbackSettings) -> wait_base:
    """Exponential from ``backoff_s``, full jitter, at most ``max_backoff_s``."""
    return wait_random_exponential(multiplier=config.backoff_s, max=config.max_backoff_s)


def may_have_targets(headers: Mapping[str, bytes], has_sinks: Callable[[str], bool]) -> bool:
    """Whether a record of the results topic may have targets, from its headers alone:
    most Results have none (not final, or no callback URL and no sink), and are skipped
    without being decoded. A record without these headers is decoded to find out."""
    status = headers.get(STATUS_HEADER)
    if status is not None and status not in FINAL:
        return False
    callback = headers.get(CALLBACK_HEADER)
    function = headers.get(FUNCTION_HEADER)
    if callback is None or function is None:
        return True
    return callback == b"1" or has_sinks(function.decode(errors="replace"))


def targets(result: Result, sinks: Iterable[Sink]) -> list[Target]:
    """Where a Result goes: its callback URL and the sinks of its function that existed
    when it finished. Only final Results go, and never those of a shadow run."""
    if not result.status.final or result.shadow:
        return []
    found = [Target(CALLBACK_TARGET, Kind.CALLBACK, result.callback_url)] \
        if result.callback_url else []
    finished = result.finished_at or ""
    found += [Target(s.id, Kind.SINK, s.url) for s in sinks
              if s.function == result.function and (not finished or s.created_at <= finished)]
    return found


@dataclass
class _Run:
    """One delivery under way: its latest record and what each attempt sends."""

    delivery: Delivery
    body: bytes
    origin: str


class Dispatcher:
    def __init__(self, config: CallbackSettings, secret: str,
                 sinks: Callable[[], Iterable[Sink]], ledger: Ledger,
                 sync: Callable[[], Awaitable[None]], breaker: Breaker, sender: Sender,
                 journal: Journal, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._secret = secret
        self._sinks = sinks
        self._ledger = ledger
        self._sync = sync
        self._breaker = breaker
        self._sender = sender
        self._journal = journal
        self._sleep = sleep
        self._clock = clock
        self._lanes: dict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(config.per_target))
        self._inflight: dict[str, asyncio.Future[None]] = {}

    async def handle(self, result: Result) -> None:
        """Deliver ``result`` to each of its targets not settled yet; returns once all are."""
        wanted = targets(result, self._sinks())
        if not wanted:
            return
        with log_context(invocation_id=result.invocation_id, event_id=result.event_id,
                         function=result.function, source=result.source):
            # what other workers settled before this Result came again
            await durably("reading the callbacks topic", self._sync)
            body = dumps(result.to_dict())
            await asyncio.gather(*(self._once(result.invocation_id, target, body)
                                   for target in wanted))

    async def _once(self, invocation_id: str, target: Target, body: bytes) -> None:
        """One delivery per (invocation, target) at a time: a Result read twice (written
        twice, or redelivered) joins the delivery in flight."""
        key = f"{invocation_id}/{target.id}"
        if self._ledger.settled(key):
            return
        running = self._inflight.get(key)
        if running is None:
            running = asyncio.ensure_future(self._deliver(invocation_id, target, body))
            self._inflight[key] = running
            running.add_done_callback(lambda _: self._inflight.pop(key, None))
        await asyncio.shield(running)

    async def close(self) -> None:
        """Cancel the deliveries under way (their Results are unacknowledged: redelivered)."""
        running = list(self._inflight.values())
        for future in running:
            future.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    async def _deliver(self, invocation_id: str, target: Target, body: bytes) -> None:
        delivery = self._ledger.unsettled(f"{invocation_id}/{target.id}") or Delivery(
            invocation_id, target, message_id(invocation_id, target.id))
        try:
            origin = endpoint(target.url).origin
        except Refused as exc:  # checked when it was given; a setting may have changed
            refused = Attempt(utc_now(), 0.0, error=exc.message)
            await self._record(_Run(replace(delivery, state=State.FAILED,
                                            attempts=(*delivery.attempts, refused)), body, ""))
            return
        run = _Run(replace(delivery, state=State.PENDING), body, origin)
        await self._record(run)
        retrying = AsyncRetrying(
            stop=retry_stop(self._config, len(delivery.attempts)),
            wait=retry_wait(self._config),
            retry=retry_if_result(lambda attempt: not attempt.ok),
            retry_error_callback=_last_attempt, sleep=self._sleep)
        last: Attempt = await retrying(self._attempt, run)
        if not last.ok:
            run.delivery = replace(run.delivery, state=State.FAILED)
            await self._record(run)
            log.warning("delivery %s to %s failed after %d attempts", run.delivery.key,
                        target.url, len(run.delivery.attempts))

    async def _attempt(self, run: _Run) -> Attempt:
        await self._admitted(run)
        try:
            async with self._lanes[run.origin]:
                headers = {**signed_headers(run.body, self._secret, run.delivery.message_id,
                                            self._clock()),
                           "X-Call-Id": run.delivery.invocation_id}  # as OpenFaaS's callbacks
                attempt = await self._sender.post(run.delivery.target.url, run.body, headers)
        except BaseException:
            self._breaker.abandoned(run.origin)
            raise
        if attempt.ok:
            change = self._breaker.succeeded(run.origin)
        else:
            why = attempt.error or f"HTTP {attempt.status_code}"
            change = self._breaker.failed(run.origin, why)
        if change is not None:
            log.warning("target %s: %s (%s)", change.origin, change.circuit, change.reason)
            await durably(f"breaker of {change.origin}", partial(self._journal.target, change))
        run.delivery = replace(run.delivery, attempts=(*run.delivery.attempts, attempt),
                               state=State.DELIVERED if attempt.ok else State.PENDING)
        await self._record(run)
        return attempt

    async def _admitted(self, run: _Run) -> None:
        """Wait while the target's breaker is paused (the record says so meanwhile)."""
        while not self._breaker.admits(run.origin):
            if run.delivery.state is not State.PAUSED:
                run.delivery = replace(run.delivery, state=State.PAUSED)
                await self._record(run)
            wait = self._breaker.wait_s(run.origin)
            await self._sleep(min(wait, PAUSED_POLL_S) if wait > 0 else PAUSED_POLL_S)

    async def _record(self, run: _Run) -> None:
        delivery = run.delivery
        await durably(f"callback record {delivery.key}",
                      partial(self._journal.delivery, delivery))
        self._ledger.note(delivery)


def _last_attempt(state: RetryCallState) -> Attempt:
    """Out of attempts or time: the last attempt, to be recorded as failed."""
    assert state.outcome is not None
    attempt: Attempt = state.outcome.result()
    return attempt
