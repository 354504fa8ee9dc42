"""The supervisor behind ``faasflow up``: starts the platform's processes and keeps them alive.

It starts its children in order (broker, worker, gateway), each once the one before is
ready, then watches them: it reaps each one that exits and starts it again after a backoff
(tenacity's exponential backoff with jitter; the count starts over once a child has run
well), and it kills and restarts one that is alive but unhealthy (see
``supervision.unhealthy``). Everything it knows goes to its state file, which
``faasflow status`` reads. On SIGTERM or SIGINT it stops the gateway, the worker, then the
broker, each gracefully within ``STOP_GRACE_S`` and then with SIGKILL.

One supervisor per state directory: it holds the directory's lock for its whole life.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from pipeline import health
from pipeline.cli import state as run_state
from pipeline.cli.platform import stop_leftovers
from pipeline.cli.processes import (
    REPO,
    STOP_GRACE_S,
    STOP_ORDER,
    Component,
    Lock,
    OnReady,
    ProcessId,
    RunFiles,
    StartError,
    signal_group,
)
from pipeline.cli.state import ComponentState, Exit, SupervisorState
from pipeline.cli.supervision import (
    Observation,
    RestartPolicy,
    exit_reason,
    stalled_since,
    unhealthy,
)
from pipeline.settings import Settings

log = logging.getLogger(__name__)



class AlreadyRunning(Exception):
    """Another supervisor holds this state directory."""


class Exited(Exception):
    """A child exited, or was killed as unhealthy, before it had run well."""


@dataclass(slots=True)
class Child:
    """One component and, while it runs, its process."""

    component: Component
    process: asyncio.subprocess.Process | None = None
    exited: asyncio.Task[int] | None = None  # the process's returncode, once reaped
    seen: Observation = field(default_factory=lambda: Observation(started_at=time.time()))
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    keeper: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.component.name


class Supervisor:
    def __init__(self, settings: Settings, children: Sequence[Component],
                 policy: RestartPolicy | None = None) -> None:
        self.settings = settings
        self.policy = policy or RestartPolicy()
        self.files = RunFiles(settings.state_dir)
        self.children = [Child(component) for component in children]
        self.state: SupervisorState | None = None
        self._lock = Lock(self.files.lock)
        self._stopping = asyncio.Event()
        self._http = httpx.AsyncClient(timeout=2.0)

    def request_stop(self) -> None:
        """Stop everything: the children being started at once, the others in order."""
        self._stopping.set()
        for child in self.children:
            if child.keeper is None:
                child.stop.set()

    def _ending(self, child: Child) -> bool:
        return child.stop.is_set() or self._stopping.is_set()

    async def run(self, on_ready: OnReady | None = None) -> None:
        """Start the children, keep them alive until asked to stop, then stop them.

        Raises AlreadyRunning, or StartError when a child does not become ready (the ones
        already started are stopped again).
        """
        if not self._lock.acquire(timeout_s=2.0):
            raise AlreadyRunning(f"a supervisor already runs for {self.settings.state_dir}")
        try:
            previous = run_state.read(self.files.state)
            me = ProcessId.of(os.getpid())
            assert me is not None
            self.state = SupervisorState(pid=me.pid, pid_started=me.started,
                                         started_at=time.time(),
                                         components={c.name: ComponentState()
                                                     for c in self.children})
            self._publish()
            for name in await asyncio.to_thread(stop_leftovers, previous):
                log.warning("stopped %s, left running by a supervisor that died", name)
            await self._supervise(on_ready)
        finally:
            await self._http.aclose()
            self._lock.release()

    async def _supervise(self, on_ready: OnReady | None) -> None:
        try:
            await self._start_all(on_ready)
        except StartError as exc:
            self._publish(state="stopping")
            await self._stop_all()
            self._publish(state="failed", error=str(exc))
            raise
        if not self._stopping.is_set():
            self._publish(state="running")
            log.info("all started: %s", ", ".join(c.name for c in self.children))
            await self._stopping.wait()
        self._publish(state="stopping")
        await self._stop_all()
        self._publish(state="stopped")

    async def _start_all(self, on_ready: OnReady | None) -> None:
        for child in self.children:
            if self._stopping.is_set():
                return
            await self._spawn(child, restart=False)
            error = await self._until_ready(child)
            if error is not None:
                raise StartError(f"{error}; see {self.files.log(child.name)}")
            if child.process is None or self._stopping.is_set():
                return
            if on_ready is not None:
                on_ready(child.component, child.process.pid)
            child.keeper = asyncio.create_task(self._keep(child), name=f"keep-{child.name}")

    async def _until_ready(self, child: Child) -> str | None:
        """None once the child is ready (or a stop was asked for), else why it is not."""
        while not child.seen.ready:
            if await self._wait(child):
                return None if child.stop.is_set() else (
                    f"{child.component.ready} exited ({self._last_exit(child)})")
            why = await self._check(child)
            age = time.time() - child.seen.started_at
            if why is None and not child.seen.ready and age > self.policy.start_timeout_s:
                why = f"not ready after {age:.0f}s"
            if why is not None:
                await self._end(child, signal.SIGKILL, f"unhealthy: {why}")
                return f"{child.component.ready}: {why}"
        return None

    async def _wait(self, child: Child) -> bool:
        """Wait one check interval; True if the child ended (exited, or was stopped)."""
        assert child.exited is not None
        stop = asyncio.ensure_future(child.stop.wait())
        try:
            await asyncio.wait({child.exited, stop}, timeout=self.policy.check_interval_s,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if child.exited.done():
            self._record_exit(child, exit_reason(child.exited.result()))
            return True
        if child.stop.is_set():
            await self._end(child, signal.SIGTERM, None)
            return True
        return False

    async def _keep(self, child: Child) -> None:
        """Restart the child whenever it ends, until it is asked to stop.

        Each ``retrying`` call covers one streak of early exits, so the backoff grows along
        it; a child that ran well ends the streak and is started again at once.
        """
        def restart_scheduled(attempt: RetryCallState) -> None:
            assert attempt.next_action is not None
            delay = attempt.next_action.sleep
            log.warning("%s: exit %d in a row; starting it again in %.1fs",
                        child.name, attempt.attempt_number, delay)
            self._set(child, restart_at=time.time() + delay)

        retrying = AsyncRetrying(
            wait=self.policy.wait(), retry=retry_if_exception_type(Exited),
            stop=lambda _: self._ending(child), sleep=lambda s: self._pause(child, s),
            before_sleep=restart_scheduled, reraise=True,
        )
        while not self._ending(child):
            with contextlib.suppress(Exited):
                await retrying(self._run_once, child)

    async def _run_once(self, child: Child) -> None:
        if child.process is None:
            if self._ending(child):
                return
            await self._spawn(child, restart=True)
        while not await self._wait(child):
            why = await self._check(child)
            if why is not None:
                log.warning("%s (pid %s) is unhealthy: %s; killing it", child.name,
                            self._component(child).pid, why)
                await self._end(child, signal.SIGKILL, f"unhealthy: {why}")
                break
        if self._ending(child):
            return
        recorded = self._component(child)
        assert recorded.last_exit is not None
        log.warning("%s exited: %s", child.name, recorded.last_exit.reason)
        if not self.policy.ran_well(recorded.ready_at, recorded.last_exit.at):
            raise Exited(recorded.last_exit.reason)

    async def _pause(self, child: Child, seconds: float) -> None:
        """The backoff's sleep; a stop ends it early."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(child.stop.wait(), seconds)

    async def _spawn(self, child: Child, *, restart: bool) -> None:
        path = self.files.log(child.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as output:
            process = await asyncio.create_subprocess_exec(
                *child.component.command, stdin=subprocess.DEVNULL, stdout=output,
                stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO,
            )
        child.process = process
        child.exited = asyncio.create_task(process.wait())
        now = time.time()
        child.seen = Observation(started_at=now)
        known = ProcessId.of(process.pid)
        recorded = self._component(child)
        self._set(child, state="starting", pid=process.pid,
                  pid_started=known.started if known else None, started_at=now,
                  ready_at=None, restart_at=None, probe=None,
                  restarts=recorded.restarts + (1 if restart else 0))
        log.info("started %s (pid %d)", child.name, process.pid)

    async def _end(self, child: Child, first: signal.Signals, reason: str | None) -> None:
        """Stop the child's process group: SIGKILL at once, or SIGTERM and SIGKILL after
        ``STOP_GRACE_S``. ``reason`` overrides how its exit is recorded."""
        assert child.process is not None
        assert child.exited is not None
        signal_group(child.process.pid, first)
        if first != signal.SIGKILL:
            signal_group(child.process.pid, signal.SIGCONT)  # a stopped one must see it
            await asyncio.wait({child.exited}, timeout=STOP_GRACE_S)
            if not child.exited.done():
                log.warning("%s did not stop within %.0fs; killing it", child.name,
                            STOP_GRACE_S)
                signal_group(child.process.pid, signal.SIGKILL)
        returncode = await child.exited
        self._record_exit(child, reason or exit_reason(returncode))

    def _record_exit(self, child: Child, reason: str) -> None:
        assert child.process is not None
        pid = child.process.pid
        child.process = child.exited = None
        if child.name == "worker":
            self.settings.worker_ready_marker(pid).unlink(missing_ok=True)
            health.health_file(self.settings.state_dir, "worker", pid).unlink(missing_ok=True)
        self._set(child, state="stopped" if self._ending(child) else "restarting", pid=None,
                  pid_started=None, probe=None, last_exit=Exit(reason, time.time()))

    def _last_exit(self, child: Child) -> str:
        last_exit = self._component(child).last_exit
        return last_exit.reason if last_exit else "unknown"

    async def _check(self, child: Child) -> str | None:
        """Look at a running child: note when it becomes ready and what its health says;
        return why it must be restarted, if it must."""
        assert child.process is not None
        now, seen, probe = time.time(), child.seen, None
        if child.name == "worker":
            report = health.read(
                health.health_file(self.settings.state_dir, "worker", child.process.pid))
            ready = seen.ready or self.settings.worker_ready_marker(child.process.pid).exists()
            seen = replace(seen, ready=ready, health=report,
                           stalled_since=stalled_since(seen.stalled_since, report))
            if report is not None:
                probe = " ".join([report.status, *report.problems])
        elif child.name == "gateway":
            code = await self._healthz()
            seen = replace(seen, ready=seen.ready or code == 200,
                           answered_at=now if code is not None else seen.answered_at)
            probe = "no answer" if code is None else "ok" if code == 200 \
                else f"not ready (HTTP {code})"
        else:
            seen = replace(seen, ready=seen.ready or await self._accepts(
                self.settings.kafka.embedded_port))
        child.seen = seen
        recorded = self._component(child)
        if seen.ready and recorded.ready_at is None:
            self._set(child, state="running", ready_at=now)
        if probe != recorded.probe:
            self._set(child, probe=probe)
        return unhealthy(child.name, seen, now, self.policy)

    async def _healthz(self) -> int | None:
        try:
            response = await self._http.get(f"{self.settings.gateway.url()}/healthz")
        except httpx.TransportError:
            return None
        return response.status_code

    @staticmethod
    async def _accepts(port: int) -> bool:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1.0)
        except (OSError, TimeoutError):
            return False
        writer.close()
        return True

    async def _stop_all(self) -> None:
        """Stop the children in ``STOP_ORDER``, each before the next."""
        by_name = {child.name: child for child in self.children}
        for name in STOP_ORDER:
            child = by_name.get(name)
            if child is None:
                continue
            child.stop.set()
            if child.keeper is not None:
                await child.keeper
            elif child.process is not None:
                await self._end(child, signal.SIGTERM, None)
            self._set(child, state="stopped", restart_at=None)
            log.info("stopped %s", name)

    def _component(self, child: Child) -> ComponentState:
        assert self.state is not None
        return self.state.components[child.name]

    def _set(self, child: Child, **changes: Any) -> None:
        assert self.state is not None
        components = {**self.state.components,
                      child.name: replace(self._component(child), **changes)}
        self._publish(components=components)

    def _publish(self, **changes: Any) -> None:
        assert self.state is not None
        self.state = replace(self.state, **changes)
        run_state.write(self.files.state, self.state)


def serve(settings: Settings, children: Sequence[Component], on_ready: OnReady | None = None,
          policy: RestartPolicy | None = None) -> None:
    """Run a supervisor in this process until SIGTERM or SIGINT (its health probes' lines
    are quiet: ``pipeline.observability.logs``)."""

    async def main() -> None:
        supervisor = Supervisor(settings, children, policy)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, supervisor.request_stop)
        await supervisor.run(on_ready)

    asyncio.run(main())
