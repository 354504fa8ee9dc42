"""The warm runtime: long-lived containers running an OpenWhisk-protocol runtime
(``functions/runtime``), reached over a unix socket, as Fn's hot functions are — so a warm
container needs no network at all. Here: a pool per function, and each call — its input
decoded by the runtime's own ``decode_input``, its output taken as the runtime wrote it, a
broken call told apart as the engine's doing or the function's. ``containers`` starts and
removes the containers. A function built with an Fn FDK (``contract: fn``) is called as Fn
calls it (``pipeline.runtime.fn``), and judged the same way.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pipeline.errors import RuntimeUnavailable
from pipeline.records import Failure, Status, utc_now
from pipeline.runtime import fn
from pipeline.runtime.base import RunOutcome, RunRequest, capped
from pipeline.runtime.containers import Containers, StartFailed, WarmContainer
from pipeline.runtime.engine import Engine
from pipeline.runtime.pool import Capacity, FunctionPool, PoolRetired
from pipeline.runtime.shim import decode_input, encode_output
from pipeline.runtime.verdicts import Verdict, broken_call
from pipeline.runtime.wire import Broken, Unreached
from pipeline.settings import Settings
from pipeline.specs import Contract, FunctionSpec, Language

log = logging.getLogger(__name__)

RUNTIME_IMAGES = {Language.PYTHON: "faasflow/runtime-python:latest",
                  Language.NODE: "faasflow/runtime-node:latest"}
EXIT_WAIT_S = 2.0  # for a container whose runtime broke the connection to be seen exited
EXEC_CONTENT_TYPE = "application/octet-stream"  # an exec-mode command reads bytes


def share_of(total: int, sharers: int) -> int:
    """One of ``sharers`` processes' part of a bound, rounded up: never 0 of a non-zero."""
    return -(-total // sharers)


@dataclass(frozen=True, slots=True)
class WarmCount:
    """One function's warm containers on this node: ``busy`` (in a call, or starting) and
    ``idle`` ones of this process's pool, and those running ``elsewhere``, for the node's
    other faasflow processes (workers, other gateway processes), whose pools this process
    cannot see into."""

    busy: int
    idle: int
    elsewhere: int


class WarmRunner:
    """``Runner`` adapter for warm functions: one ``FunctionPool`` per deployed version.

    ``sharers`` processes running the same functions (the gateway's processes) each keep
    their share of the bounds: of ``max_warm_containers``, and of each function's
    ``max_concurrency`` and ``min_warm``."""

    def __init__(self, settings: Settings,
                 secret_env: Callable[[FunctionSpec], Mapping[str, str]],
                 engine: Engine, sharers: int = 1) -> None:
        self._settings = settings.runtime
        self._engine = engine
        self._sharers = sharers
        self._containers = Containers(
            settings.runtime, secret_env, engine,
            settings.runtime.socket_dir or settings.state_dir / "run" / "warm")
        self._capacity = Capacity(share_of(settings.runtime.max_warm_containers, sharers))
        self._pools: dict[str, tuple[FunctionSpec, FunctionPool[WarmContainer]]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._maintainer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self._containers.remove_orphans)
        self._maintainer = asyncio.create_task(self._maintain(), name="warm-pools")

    async def close(self) -> None:
        if self._maintainer is not None:
            self._maintainer.cancel()
        pools = [pool for _, pool in self._pools.values()]
        self._pools.clear()
        await asyncio.gather(*(pool.drain() for pool in pools), *self._background,
                             return_exceptions=True)
        await asyncio.to_thread(self._containers.close)

    # pools

    def pool(self, function: FunctionSpec) -> FunctionPool[WarmContainer]:
        """The pool of this version of the function; a redeploy drains the previous one."""
        current = self._pools.get(function.name)
        if current is not None and current[0] == function:
            return current[1]
        if current is not None:
            self._spawn(current[1].drain())
        pool: FunctionPool[WarmContainer] = FunctionPool(
            function.name, lambda: self._containers.start(function), self._capacity,
            max_size=share_of(function.max_concurrency, self._sharers),
            min_warm=share_of(function.min_warm, self._sharers),
            idle_timeout_s=function.idle_timeout_s,
        )
        self._pools[function.name] = (function, pool)
        return pool

    def containers(self) -> dict[str, tuple[int, int]]:
        """Each warm function's containers in this process, as (busy or starting, idle):
        what the dashboard shows (other processes keep pools of their own)."""
        return {name: (pool.size - pool.idle, pool.idle)
                for name, (_, pool) in self._pools.items()}

    async def census(self) -> dict[str, WarmCount]:
        """Each function's warm containers on this node (``WarmCount``), counted through
        the engine by their labels."""
        running = await asyncio.to_thread(self._containers.running)
        own = self.containers()
        return {name: WarmCount(*own.get(name, (0, 0)),
                                max(0, running[name] - sum(own.get(name, (0, 0)))))
                for name in sorted(running.keys() | own.keys())}

    def follow(self, function: FunctionSpec | None, name: str) -> None:
        """A function was deployed (prewarm it) or deleted (``None``: drain its pool)."""
        if function is None or function.mode.value != "warm":
            old = self._pools.pop(name, None)
            if old is not None:
                self._spawn(old[1].drain())
            return
        self._spawn(self.pool(function).prewarm())

    def restart(self, function: FunctionSpec) -> None:
        """Replace every container of the function (its secrets changed)."""
        old = self._pools.pop(function.name, None)
        if old is not None:
            self._spawn(old[1].drain())
        self.follow(function, function.name)

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("warm pool work failed: %s", str(task.exception()))

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(self._settings.maintain_interval_s)
            for _, pool in list(self._pools.values()):
                try:
                    await pool.maintain()
                except (StartFailed, RuntimeUnavailable) as exc:
                    log.warning("pool %s: %s", pool.name, str(exc))

    # one call

    async def run(self, request: RunRequest) -> RunOutcome:
        """The run's timings start once it has a container: waiting for one, and starting
        one (``init_s``), are not the function's time, nor part of its timeout."""
        while True:
            pool = self.pool(request.function)
            started_at, t0 = utc_now(), time.perf_counter()
            try:
                container, cold = await pool.acquire()
            except PoolRetired:
                continue
            except StartFailed as exc:
                return _outcome(Status.FAILED, started_at, t0, error=str(exc),
                                failure=Failure.START)
            started_at, t0 = utc_now(), time.perf_counter()
            healthy = False
            try:
                outcome, healthy = await self._call(container, request, started_at, t0)
            finally:
                await pool.release(container, healthy=healthy)
            if outcome is None and not cold:
                continue  # an idle container that died meanwhile: the call never reached it
            if outcome is None:
                outcome = _outcome(Status.FAILED, started_at, t0, failure=Failure.UNAVAILABLE,
                                   error="its new container stopped answering")
            return replace(outcome, cold_start=cold, init_s=container.init_s if cold else None)

    async def _call(self, container: WarmContainer, request: RunRequest, started_at: str,
                    t0: float) -> tuple[RunOutcome | None, bool]:
        """The outcome (None when the call could not reach the container), and whether the
        container is fit for the next call (a timed-out or broken one is replaced)."""
        function = request.function
        try:
            if function.contract is Contract.FN:
                reply = await container.exchange(
                    fn.CALL_PATH, request.payload, function.timeout_s,
                    fn.call_headers(function, request.invocation_id, request.content_type,
                                    request.env, datetime.now(UTC)))
                return self._fn_outcome(fn.answer(*reply), started_at, t0), True
            content_type = EXEC_CONTENT_TYPE if container.exec_mode else request.content_type
            body = {"value": decode_input(request.payload, content_type),
                    "activation_id": request.invocation_id,
                    "deadline": int((time.time() + function.timeout_s) * 1000),
                    "env": dict(request.env)}  # the per-call CE_* variables, as cold calls get
            status, answer = await container.post("/run", body, function.timeout_s,
                                                  headers={"X-Faasflow-Logs": "1"})
        except Unreached:
            return None, False
        except TimeoutError:
            return _outcome(Status.TIMEOUT, started_at, t0, error=f"timed out after "
                            f"{function.timeout_s:g}s and was killed",
                            failure=Failure.TIMEOUT), False
        except Broken as exc:
            verdict = await self._broken(container, function)
            log.warning("pool %s: %s (%s)", function.name, verdict.error, exc)
            return _outcome(verdict.status, started_at, t0, error=verdict.error,
                            failure=verdict.failure), False
        return self._interpret(status, answer, started_at, t0), True

    async def _broken(self, container: WarmContainer, function: FunctionSpec) -> Verdict:
        try:
            ended = await asyncio.to_thread(self._engine.ended, container.id, EXIT_WAIT_S)
        except RuntimeUnavailable as exc:
            return Verdict(Status.FAILED, Failure.UNAVAILABLE,
                           f"the runtime and the Docker Engine were lost ({exc})")
        return broken_call(ended, function.memory_mb)

    def _fn_outcome(self, answer: fn.Answer, started_at: str, t0: float) -> RunOutcome:
        if answer.status is not Status.SUCCEEDED:
            return _outcome(answer.status, started_at, t0, failure=answer.failure,
                            error=answer.error)
        output, cut = capped(answer.output, self._settings.max_output_bytes)
        if cut:
            return _outcome(Status.FAILED, started_at, t0, failure=Failure.ERROR,
                            error="output exceeded the size limit and was cut")
        return _outcome(Status.SUCCEEDED, started_at, t0, output=output)

    def _interpret(self, status: int, answer: bytes, started_at: str,
                   t0: float) -> RunOutcome:
        try:
            reply = json.loads(answer)
            logs, _ = capped(str(reply.get("logs", "")).encode(),
                             self._settings.max_log_bytes)
        except (ValueError, AttributeError):
            return _outcome(Status.FAILED, started_at, t0, failure=Failure.ERROR,
                            error=f"the runtime answered HTTP {status} without "
                                  "a JSON object")
        if status != 200:
            return _outcome(Status.FAILED, started_at, t0, logs=logs, failure=Failure.ERROR,
                            error=str(reply.get("error") or f"HTTP {status}"))
        try:
            output, cut = capped(_output(reply), self._settings.max_output_bytes)
        except ValueError as exc:  # binascii.Error and UnicodeError are ValueErrors
            return _outcome(Status.FAILED, started_at, t0, logs=logs, failure=Failure.ERROR,
                            error=f"the runtime answered a malformed output: {exc}")
        if cut:
            return _outcome(Status.FAILED, started_at, t0, logs=logs, failure=Failure.ERROR,
                            error="output exceeded the size limit and was cut")
        return _outcome(Status.SUCCEEDED, started_at, t0, output=output, logs=logs)

def _output(reply: dict[str, Any]) -> bytes:
    """The output a runtime answered: exactly what the same runtime writes in cold mode.
    (A runtime baked into an image before "output" answered the parsed "result".)"""
    if "output" in reply:
        return str(reply["output"]).encode()
    if "output_base64" in reply:
        return base64.b64decode(str(reply["output_base64"]), validate=True)
    result = reply.get("result")
    return result.encode() if isinstance(result, str) else encode_output(result)


def _outcome(status: Status, started_at: str, t0: float, *, output: bytes = b"",
             logs: bytes = b"", error: str | None = None,
             failure: Failure | None = None) -> RunOutcome:
    return RunOutcome(status=status, output=output, logs=logs.decode(errors="replace"),
                      started_at=started_at, finished_at=utc_now(),
                      duration_s=round(time.perf_counter() - t0, 6), error=error,
                      failure=failure)
