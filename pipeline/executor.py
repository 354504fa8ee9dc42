"""The executor's core: run one invocation to exactly one final Result, whatever fails.

    handle(invocation)
      ├─ its function does not exist ─────────────► failed Result + dead letter
      ├─ already final (a redelivery) ────────────► nothing to do
      └─ attempt n: wait for a slot of the function (concurrency, rate) ─► running ─► run
           ├─ succeeded ──────────────────────────► final Result
           ├─ failed, the policy retries it ──────► Result with retry_at; wait, holding no
           │                                        slot; attempt n+1
           └─ failed on its last attempt ─────────► final Result + dead letter (exhausted)
      An exception from the runner is a failure too: ``RuntimeUnavailable`` is
      ``unavailable``, anything else ``internal`` (logged with its traceback).

``handle`` returns only once the final Result and any dead letter are written (a broker
that is down is waited for, with backoff): the caller acknowledges the input then, and
not before. The core knows Kafka and Docker only through the ``ResultLog`` and ``Runner``
ports, so unit tests drive it with in-memory ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from enum import StrEnum
from functools import partial
from typing import Protocol

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    wait_random_exponential,
)

from pipeline import deadletters
from pipeline.admission import Admission
from pipeline.batches import ordering, splitting
from pipeline.batches.ordering import KeyedTurns, Turn
from pipeline.batches.retries import EXPIRED, BatchTries, per_event
from pipeline.budget import cut_error
from pipeline.deadletters import DeadLetter, Reason
from pipeline.errors import BrokerUnavailable, PayloadTooLarge, RuntimeUnavailable, Superseded
from pipeline.execution import execute, failed, running
from pipeline.observability.logs import invocation_ids, log_context
from pipeline.records import Attempt, Failure, Invocation, Result, Status, utc_now
from pipeline.runtime.base import Runner
from pipeline.specs import FunctionSpec

log = logging.getLogger(__name__)

DURABLE_WAIT_MAX_S = 30.0
RUNNING_AFTER_S = 0.2


class Handled(StrEnum):
    """How ``handle`` ended; every case but ``superseded`` wrote a final Result."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the final Result is failed or timeout, and it was dead-lettered
    DUPLICATE = "duplicate"  # a final Result existed already: nothing was run
    SUPERSEDED = "superseded"  # another run of it (elsewhere) took over


class ResultLog(Protocol):
    async def write(self, result: Result) -> None:
        """Write and wait for the acknowledgement; ``BrokerUnavailable`` or
        ``PayloadTooLarge`` when it could not."""
        ...

    def note(self, result: Result) -> None:
        """Write without waiting (a non-final state: a later write supersedes it)."""
        ...

    async def dead_letter(self, letter: DeadLetter) -> None:
        """Write and wait for the acknowledgement, as ``write``."""
        ...


class Finals(Protocol):
    def is_final(self, invocation_id: str, redrive: int = 0) -> bool:
        """Whether a final Result of the invocation (of that redrive of it) is in the log."""
        ...


Lookup = Callable[[str], FunctionSpec | None]


async def durably(what: str, write: Callable[[], Awaitable[None]]) -> None:
    """Retry ``write`` while the broker is unavailable (exponential backoff with full
    jitter, at most ``DURABLE_WAIT_MAX_S`` apart) until it lands or the task is cancelled:
    what must be written is never dropped."""
    def warn(state: RetryCallState) -> None:
        log.warning("%s not written (attempt %d): %s; retrying", what, state.attempt_number,
                    state.outcome.exception() if state.outcome else "")

    try:  # the usual case, without the retry machinery's cost on every record
        await write()
        return
    except BrokerUnavailable as exc:
        log.warning("%s not written: %s; retrying", what, exc)
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(BrokerUnavailable),
        wait=wait_random_exponential(multiplier=0.2, max=DURABLE_WAIT_MAX_S),
        before_sleep=warn, reraise=True,
    ):
        with attempt:
            await write()


class Executor:
    def __init__(self, functions: Lookup, runner: Runner, results: ResultLog, finals: Finals,
                 admission: Admission) -> None:
        self._functions = functions
        self._runner = runner
        self._results = results
        self._finals = finals
        self.admission = admission
        self._inflight: dict[str, asyncio.Future[Handled]] = {}
        self._waiting: dict[str, int] = {}  # callers of each run in flight
        self._turns = KeyedTurns()
        self._open = asyncio.Event()  # cleared while a rebalance holds new runs back
        self._open.set()
        self._started: set[str] = set()  # invocations past their first slot, until handled
        self._quiet = asyncio.Event()  # set while there is none
        self._quiet.set()

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def hold(self) -> None:
        """Start no run until ``release``: the partitions are being reassigned, and a run
        started now could start on their new owner too. Runs already going go on."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    async def quiet(self, timeout_s: float) -> bool:
        """Wait (at most ``timeout_s``) until every invocation that started has been handled
        (its final Result written); whether they all have."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._quiet.wait()
        except TimeoutError:
            return False
        return True

    @asynccontextmanager
    async def _slot(self, function: FunctionSpec) -> AsyncIterator[None]:
        """A slot of the function's admission, taken while no rebalance holds runs back."""
        while True:
            await self._open.wait()
            async with self.admission.slot(function):
                if self._open.is_set():  # not held while it waited for the slot
                    yield
                    return

    async def handle(self, invocation: Invocation) -> Handled:
        """Kafka may deliver an invocation again while it still runs here (a rebalance):
        the second delivery waits for the first instead of running it twice. A run that no
        caller waits for any more (they were cancelled: the worker stops, or lost the
        partition) is abandoned: unacknowledged, it is redone by whoever gets it next."""
        run = self._inflight.get(invocation.id)
        if run is None:
            turn = self._turns.reserve(ordering.keys(invocation))
            run = asyncio.ensure_future(self._handle_in_turn(invocation, turn))
            run.add_done_callback(lambda _: turn.release())
            self._inflight[invocation.id] = run
            self._waiting[invocation.id] = 0
            run.add_done_callback(lambda _: self._forget(invocation.id))
        self._waiting[invocation.id] += 1
        try:
            return await asyncio.shield(run)
        except asyncio.CancelledError:
            if invocation.id in self._waiting:
                self._waiting[invocation.id] -= 1
                if self._waiting[invocation.id] == 0:
                    run.cancel()
            raise

    def _forget(self, invocation_id: str) -> None:
        self._inflight.pop(invocation_id, None)
        self._waiting.pop(invocation_id, None)
        self._started.discard(invocation_id)
        if not self._started:
            self._quiet.set()

    async def _handle_in_turn(self, invocation: Invocation, turn: Turn) -> Handled:
        """After the invocations before it that share a key (``batches.ordering``)."""
        with log_context(**invocation_ids(invocation)):
            await turn.ready()
            return await self._handle(invocation)

    async def _handle(self, invocation: Invocation) -> Handled:
        if self._finals.is_final(invocation.id, invocation.redrive):
            log.info("invocation %s is final already; not running it again", invocation.id)
            return Handled.DUPLICATE
        function = self._functions(invocation.function)
        if function is None:
            reason = f"function {invocation.function!r} does not exist"
            await self._finish(invocation, failed(invocation, reason, Failure.START),
                               Reason.UNKNOWN_FUNCTION)
            return Handled.FAILED
        try:
            result = await self._attempts(invocation, function)
        except Superseded as exc:
            log.info("%s; not writing its result", exc)
            return Handled.SUPERSEDED
        if self._finals.is_final(invocation.id, invocation.redrive):  # finished elsewhere
            log.warning("invocation %s was finished elsewhere; keeping that Result",
                        invocation.id)
            return Handled.DUPLICATE
        if result.status is Status.SUCCEEDED:
            await self._finish(invocation, result, None)
            return Handled.SUCCEEDED
        await self._finish(invocation, result, Reason.EXHAUSTED)
        return Handled.FAILED

    async def _attempts(self, invocation: Invocation, function: FunctionSpec) -> Result:
        """Run until success or the policy gives up; the last attempt's Result, with the
        earlier attempts in ``attempts``. A batch's retries run its failed events only
        (``batches.retries``)."""
        policy = function.retry
        history: list[Attempt] = []
        first = invocation.attempt
        tries = BatchTries(invocation)
        if tries.spent:
            return tries.final(failed(invocation, f"every event {EXPIRED}", Failure.ERROR))

        def retry(result: Result) -> bool:
            return (result.failure is not None and policy.retries(result.failure, result.attempt)
                    and tries.more(result))

        def waiting(state: RetryCallState) -> None:
            result: Result = state.outcome.result()  # type: ignore[union-attr]
            history.append(Attempt(result.attempt, result.status, result.failure, result.error,
                                   result.started_at, result.finished_at))
            delay = state.upcoming_sleep
            log.warning("invocation %s of %s: attempt %d %s (%s); retrying in %.1fs",
                        invocation.id, function.name, result.attempt, result.failure,
                        result.error, delay)
            self._results.note(replace(tries.after(result), status=Status.PENDING,
                                       attempts=tuple(history),
                                       retry_at=utc_now(after_s=delay)))

        async def attempt() -> Result:
            return await self._attempt(tries.current, function, history)

        # The usual case, one attempt, without the retry machinery (it cost more CPU than
        # the warm call itself: ``python -m bench throughput`` under py-spy, 2026-12-02).
        # A first attempt to retry is handed to the machinery as its own first outcome.
        first_outcome = await attempt()
        if not retry(first_outcome):
            return tries.final(first_outcome)
        outcomes = iter([first_outcome])

        async def again() -> Result:
            known = next(outcomes, None)
            return known if known is not None else await attempt()

        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, policy.max_attempts - first + 1)),
            wait=wait_random_exponential(multiplier=policy.backoff_s, max=policy.max_backoff_s),
            retry=retry_if_result(retry), before_sleep=waiting,
            retry_error_callback=lambda state: state.outcome.result(),  # type: ignore[union-attr]
        )
        result: Result = await retrying(again)
        return replace(tries.final(result), attempts=tuple(history))

    async def _attempt(self, invocation: Invocation, function: FunctionSpec,
                       history: list[Attempt]) -> Result:
        attempt = replace(invocation, attempt=invocation.attempt + len(history))
        async with self._slot(function):
            # Checked again once it has a slot, which may take long: meanwhile the previous
            # owner of its partition (a rebalance) may have finished it.
            if self._finals.is_final(invocation.id, invocation.redrive):
                raise Superseded(f"invocation {invocation.id} was finished elsewhere while "
                                 "it waited for a slot")
            self._started.add(invocation.id)
            self._quiet.clear()
            # Only a run still going after RUNNING_AFTER_S is noted running: most runs end
            # sooner, and their final Result follows the pending one straight away (one
            # record fewer to write, and to read for every reader of the results topic).
            noting = asyncio.get_running_loop().call_later(
                RUNNING_AFTER_S, self._results.note,
                replace(running(attempt, function), attempts=tuple(history)))
            try:
                return await splitting.run(
                    partial(execute, function=function, runner=self._runner), attempt)
            except (Superseded, asyncio.CancelledError):
                raise
            except RuntimeUnavailable as exc:
                return failed(attempt, exc.message, Failure.UNAVAILABLE)
            except Exception as exc:  # a bug of ours must not lose the invocation
                log.exception("invocation %s of %s: internal error", attempt.id, function.name)
                return failed(attempt, cut_error(f"internal error: {exc!r}"), Failure.INTERNAL)
            finally:
                noting.cancel()

    async def _finish(self, invocation: Invocation, result: Result,
                      dead: Reason | None) -> None:
        """Write the final Result (and the dead letter), however long the broker is away."""
        await durably(f"result of invocation {invocation.id}",
                      partial(self._write_final, result))
        if dead is not None:
            letter = DeadLetter(
                key=invocation.id, reason=dead, error=result.error or "", function=result.function,
                image_digest=result.image_digest or None, failure=result.failure,
                invocation=invocation, logs_tail=deadletters.logs_tail(result.logs),
                attempts=(*result.attempts, Attempt(result.attempt, result.status,
                                                    result.failure, result.error,
                                                    result.started_at, result.finished_at)),
            )
            for each in per_event(letter, result) if invocation.items else [letter]:
                await durably(f"dead letter of invocation {each.key}",
                              partial(self._results.dead_letter, each))
            log.error("invocation %s of %s dead-lettered (%s): %s", invocation.id,
                      result.function, dead, result.error)

    async def _write_final(self, result: Result) -> None:
        try:
            await self._results.write(result)
        except PayloadTooLarge as exc:  # cannot happen within the budget; never lose it
            log.error("result of invocation %s too large to write: %s", result.invocation_id,
                      exc.message)
            await self._results.write(replace(
                result, status=Status.FAILED, output=b"", logs=deadletters.logs_tail(result.logs),
                failure=Failure.INTERNAL,
                error=cut_error(f"the result was too large to record: {exc.message}")))

