"""Running connectors inside workers: the supervisor that starts and stops them as the
registry changes, and the states it reports on the connectors topic.

Each connector runs in exactly one worker: the one assigned the invocations partition
its name hashes to, so adding workers spreads connectors the way Kafka spreads work.

A connector whose ``run`` raises a transient error is restarted with backoff (it shows as
``retrying``); one that raises a ``PermanentError`` is marked ``failed`` and left stopped,
in this worker and in any other that owns it later, until its definition changes
(``pipeline.connector_states``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import zlib
from collections.abc import Callable
from typing import Protocol

from connectors import catalog
from connectors.base import Connector, Report, Sink, describe, retrying
from pipeline.budget import cut_error
from pipeline.connector_states import ConnectorState, ConnectorStates, State
from pipeline.errors import BrokerUnavailable, FaasflowError, PermanentError
from pipeline.kafka import CompactedView, Publisher
from pipeline.records import utc_now
from pipeline.registry import Registry
from pipeline.settings import Settings
from pipeline.specs import ConnectorSpec
from pipeline.topics import Topics
from pipeline.worker.connector_sink import KafkaSink, SinkParts

log = logging.getLogger(__name__)


class Board(Protocol):
    """Where connector states go."""

    def post(self, state: ConnectorState) -> None: ...

    def remove(self, name: str) -> None: ...


class Tracker:
    """One connector's state, as its supervisor and its sink learn it; posted on change."""

    def __init__(self, spec: ConnectorSpec, board: Board, worker: str,
                 before: ConnectorState | None = None) -> None:
        self._spec = spec
        self._board = board
        self._worker = worker
        self.current = before  # as reported before (another worker, an earlier run)

    def starting(self) -> None:
        self._enter(State.STARTING)

    def report(self, error: Exception | None) -> None:
        """``Sink.report``: retrying after ``error``, or (None) working."""
        if error is not None:
            self._enter(State.RETRYING, error)
        elif self.current is None or self.current.state is not State.RUNNING:
            log.info("connector %s running", self._spec.name)
            self._enter(State.RUNNING)

    def failed(self, error: Exception) -> None:
        log.error("connector %s failed: %s; it stays stopped until its definition changes "
                  "(delete it, then add it again)", self._spec.name, describe(error))
        self._enter(State.FAILED, error)

    def _enter(self, state: State, error: Exception | None = None) -> None:
        now, last = utc_now(), self.current
        self.current = ConnectorState(
            name=self._spec.name, definition=self._spec.created_at, state=state, at=now,
            worker=self._worker,
            error=cut_error(describe(error)) if error else last.error if last else None,
            error_at=now if error else last.error_at if last else None)
        self._board.post(self.current)


class ConnectorSupervisor:
    """Keeps one task per owned connector, and the state of each."""

    def __init__(self, registry: Registry, partitions: int,
                 build: Callable[[ConnectorSpec], Connector],
                 make_sink: Callable[[ConnectorSpec, Report], Sink], board: Board,
                 known: ConnectorStates) -> None:
        self._registry = registry
        self._partitions = partitions
        self._build = build
        self._make_sink = make_sink
        self._board = board
        self._known = known  # states reported before, by this worker or another
        self._worker = f"{socket.gethostname()}:{os.getpid()}"
        self._owned: set[int] = set()
        self._running: dict[str, tuple[ConnectorSpec, asyncio.Task[None]]] = {}

    def owner_partition(self, name: str) -> int:
        return zlib.crc32(name.encode()) % self._partitions

    def assign(self, partitions: set[int]) -> None:
        self._owned = set(partitions)
        self.reconcile()

    def reconcile(self) -> None:
        wanted = {name: spec for name, spec in self._registry.connectors.items()
                  if self.owner_partition(name) in self._owned}
        for name, (spec, task) in list(self._running.items()):
            if wanted.get(name) != spec:
                log.info("stopping connector %s", name)
                task.cancel()
                del self._running[name]
                if name not in self._registry.connectors:
                    self._board.remove(name)
        for name, spec in wanted.items():
            if name not in self._running:
                task = asyncio.create_task(self._supervise(spec), name=f"connector:{name}")
                self._running[name] = (spec, task)

    async def _supervise(self, spec: ConnectorSpec) -> None:
        """Run the connector; restart it with backoff after a transient error; return (and
        leave it stopped) after a permanent one. A task that returned stays in
        ``_running`` so that ``reconcile`` does not start it again."""
        before = self._known.of(spec)
        if before is not None and before.state is State.FAILED:
            log.warning("connector %s failed before (%s): not started until its definition "
                        "changes", spec.name, before.error)
            return
        log.info("starting connector %s (%s → source %s)", spec.name, spec.kind, spec.source)
        tracker = Tracker(spec, self._board, self._worker, before)
        tracker.starting()
        async for attempt in retrying(f"connector {spec.name}", (Exception,), tracker.report,
                                      base_s=1.0, cap_s=60.0):
            with attempt:
                try:
                    await self._build(spec).run(self._make_sink(spec, tracker.report))
                except PermanentError as exc:
                    tracker.failed(exc)
                    return
                except Exception as exc:
                    if not isinstance(exc, FaasflowError):  # not foreseen: a bug
                        log.exception("connector %s crashed", spec.name)
                    raise
                raise RuntimeError("run returned without being cancelled")

    async def stop(self) -> None:
        tasks = [task for _, task in self._running.values()]
        self._running.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def running(self) -> list[str]:
        return sorted(name for name, (_, task) in self._running.items() if not task.done())


class StateBoard:
    """Publishes connector states to the connectors topic in the background, the latest
    of each connector only: a broker outage delays a state, never a connector."""

    def __init__(self, publisher: Publisher, topic: str) -> None:
        self._publisher = publisher
        self._topic = topic
        self._pending: dict[str, ConnectorState | None] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._flush(), name="connector-states")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def post(self, state: ConnectorState) -> None:
        self._pending[state.name] = state
        self._wake.set()

    def remove(self, name: str) -> None:
        self._pending[name] = None
        self._wake.set()

    async def _flush(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                name, state = next(iter(self._pending.items()))
                async for attempt in retrying(f"connector {name}: publishing its state",
                                              (BrokerUnavailable,), lambda _: None, cap_s=30.0):
                    with attempt:
                        await self._publisher.publish(
                            self._topic, name, None if state is None else state.encode())
                if self._pending.get(name) is state:  # nothing newer came meanwhile
                    del self._pending[name]


class WorkerConnectors:
    """Everything a worker needs to run connectors, started once its registry is loaded:
    the views of checkpoints and states, the state board, the sinks and the supervisor."""

    def __init__(self, supervisor: ConnectorSupervisor, board: StateBoard,
                 views: list[CompactedView]) -> None:
        self.supervisor = supervisor
        self._board = board
        self._views = views

    @classmethod
    async def start(cls, settings: Settings, topics: Topics, registry: Registry,
                    registry_view: CompactedView, publisher: Publisher) -> WorkerConnectors:
        kafka, known = settings.kafka, ConnectorStates()
        checkpoints = known.checkpoints
        views = [CompactedView(kafka, topics.checkpoints, checkpoints.apply),
                 CompactedView(kafka, topics.connectors, known.apply)]
        for view in views:
            await view.start()
        board = StateBoard(publisher, topics.connectors)
        board.start()
        parts = SinkParts(topics, kafka, settings.budget, publisher, checkpoints,
                          lambda: registry_view.position(0))
        supervisor = ConnectorSupervisor(
            registry, kafka.partitions, catalog.build,
            lambda spec, report: KafkaSink(spec, parts, report), board, known)
        return cls(supervisor, board, views)

    def assign(self, partitions: set[int]) -> None:
        """The invocations partitions this worker was assigned: it runs their connectors."""
        self.supervisor.assign(partitions)

    def reconcile(self) -> None:
        """After a registry change."""
        self.supervisor.reconcile()

    def problems(self) -> list[str]:
        """Why the checkpoints or states may be stale (for the worker's health report)."""
        return [p for p in (view.problem() for view in self._views) if p]

    async def stop(self) -> None:
        await self.supervisor.stop()
        await self._board.stop()
        for view in self._views:
            await view.stop()
