"""The worker: a Faust app whose tasks start and execute invocations and deliver callbacks.

    faasflow.events.<source> ─► starter ─► faasflow.invocations ─► executor ─► faasflow.results
                                   └──────────── faasflow.deadletter ◄──────────┘          │
    callback URLs, sinks ◄─ POST (signed, retried) ◄─ callbacks (pipeline.callbacks) ◄─────┘

The starter reads the event topics, which appear at run time, the executor the
invocations and the callbacks the results, each as a consumer group of its own
(``pipeline.kafka.group``: batches fetched at once, acknowledgements in any order). Faust's
agents read them until 2026-12, when its per-record machinery cost more than the work: in
a profile of ``events_to_results`` Faust's consumer, its thread and the callbacks agent
(which passes over most results) took 40% of the worker's CPU, the executor 20%. The
groups took over the offsets Faust's group had committed. Faust runs the worker, its tasks,
lifecycle and signals, without a consumer or a producer of its own (``TasksOnly``).

Agents stay thin: decode (an undecodable record is dead-lettered), hand the record to the
core (``pipeline.starter``, ``pipeline.executor``) in a task of its own, and acknowledge
it to its consumer group only once the core is done with it: its
invocations queued, its final Result written. A worker that dies mid-way redoes that
work after a restart (at-least-once), and ``pipeline.finals`` keeps the redone work from
running twice. No record can stop an agent: whatever goes wrong with one record is
written down and the stream moves on.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any, TypeVar

import faust
from faust.app.base import BootStrategy

from pipeline.admission import Admission, InflightBudget
from pipeline.callbacks.dispatcher import may_have_targets
from pipeline.callbacks.service import WorkerCallbacks
from pipeline.deadletters import Origin, Reason, of_record
from pipeline.errors import BrokerUnavailable
from pipeline.executor import Executor, durably
from pipeline.finals import RecentFinals
from pipeline.kafka import CompactedView, Publisher, TailView, ensure_topics, wait_for_broker
from pipeline.kafka.group import Delivery, GroupReader, Partition
from pipeline.records import Event, Invocation, Result, strict_loads
from pipeline.registry import Registry, position_required
from pipeline.replays.worker import WorkerReplays
from pipeline.runtime.runtimes import Runtimes
from pipeline.settings import Settings
from pipeline.starter import Starter
from pipeline.topics import Topics
from pipeline.worker.connectors import WorkerConnectors
from pipeline.worker.reporting import HealthReporter
from pipeline.writer import Writer

log = logging.getLogger(__name__)

REVOKE_GRACE_S = 10.0  # how long a revoked partition's work is given to finish
ACKNOWLEDGE_S = 0.05  # then its tasks to acknowledge it
T = TypeVar("T")


class TasksOnly(BootStrategy):
    """Faust's services for an app of tasks: the consumer groups are ``GroupReader``s and
    the writes the ``Publisher``'s (Faust's documented way to leave out its Kafka clients)."""

    enable_kafka_consumer = False
    enable_kafka_producer = False
    enable_web = False


class WorkerApp(faust.App):
    BootStrategy = TasksOnly


def faust_app(settings: Settings, topics: Topics) -> faust.App:
    """The name is the group Faust's agents read in until 2026-12, which the groups of the
    starter, the executor and the callbacks inherit their first offsets from."""
    # Faust makes its data directory without parents: a fresh state directory (a container's
    # FAASFLOW_STATE_DIR) would stop the worker at start.
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    return WorkerApp(
        f"{topics.prefix}-worker",
        broker=[f"kafka://{s}" for s in settings.kafka.bootstrap_servers().split(",")],
        store="memory://",
        datadir=str(settings.state_dir / "faust"),  # not the working directory
        web_enabled=False,
    )


class Worker:
    """Owns the Faust app, the registry view, the runtimes and the cores of one worker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        kafka = settings.kafka
        self.topics = Topics(kafka)
        self.registry = Registry()
        self.app = faust_app(settings, self.topics)
        group = partial(GroupReader, kafka, fetch_max_wait_ms=settings.worker.fetch_max_wait_ms,
                        max_poll_interval_s=settings.runtime.max_timeout_s + 60,
                        inherit_from=self.app.conf.id)
        self.sources = group(self.topics.starter_group, on_revoked=self._finish_or_stop)
        self.executions = group(self.topics.executor_group,
                                on_revoked=self._executor_revoked,
                                on_assigned=self._executor_assigned)
        self.deliveries = group(self.topics.callbacks_group,
                                on_revoked=self._finish_or_stop,
                                on_assigned=self._callbacks_assigned)
        self._followed: set[str] = set()
        self.finals = RecentFinals(settings.worker.dedupe_horizon_s)
        self.publisher = Publisher(kafka)
        self.writer = Writer(self.publisher, self.topics, self.finals)
        self.inflight = InflightBudget(settings.worker.max_inflight_records,
                                       settings.worker.max_inflight_bytes)
        # Results held while their callbacks are delivered have a budget of their own, so
        # that a paused target cannot starve the starter and the executor.
        self.callback_budget = InflightBudget(settings.worker.max_inflight_records,
                                              settings.worker.max_inflight_bytes)
        self.starter = Starter(self.registry, self.writer, self.writer, self.finals,
                               settings.budget.event_record)
        self.callbacks: WorkerCallbacks | None = None
        self.executor: Executor | None = None
        self.connectors: WorkerConnectors | None = None
        self.replays: WorkerReplays | None = None
        self.views: list[CompactedView] = []
        self.reporter = HealthReporter(self)
        self._ready = asyncio.Event()
        self._runtimes: Runtimes | None = None
        self._registry_view: CompactedView | None = None
        self._finals_view: CompactedView | None = None
        self._tasks: dict[tuple[str, int], set[asyncio.Task[None]]] = defaultdict(set)
        self._executing = False  # the executor's group has assigned this worker partitions
        self._delivering = False  # and the callbacks' group
        self.app.on_before_shutdown.connect(self._on_shutdown)
        self.consumptions = (self.sources, self.executions, self.deliveries)
        self.app.task(self._starter)
        self.app.task(self._executor)
        self.app.task(self._callbacks)
        self.app.task(self._follow_registry)
        self.app.task(self.reporter.run)

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    async def prepare(self) -> None:
        """Before Faust starts: the core topics exist."""
        await wait_for_broker(self.settings.kafka, timeout_s=60)
        await ensure_topics(self.settings.kafka, self.topics.core())

    async def _follow_registry(self) -> None:
        kafka = self.settings.kafka
        await self.publisher.start()
        self._registry_view = registry_view = CompactedView(kafka, self.topics.registry,
                                                            self.registry.apply)
        self._finals_view = finals_view = TailView(
            kafka, self.topics.results, self.finals.apply,
            since_s=self.settings.worker.dedupe_horizon_s)
        for view in (registry_view, finals_view):
            await view.start()
            self.views.append(view)
        self._runtimes = Runtimes(self.settings)
        await self._runtimes.start(self.registry)
        self.executor = Executor(self.registry.functions.get, self._runtimes, self.writer,
                                 self.finals, Admission(self.settings.worker.executor_concurrency))
        self.connectors = await WorkerConnectors.start(self.settings, self.topics,
                                                       self.registry, registry_view,
                                                       self.publisher)
        self.callbacks = WorkerCallbacks(self.settings, self.topics, self.registry,
                                         self.publisher)
        self.views.extend(await self.callbacks.start())
        self.replays = WorkerReplays(kafka, self.topics, self.registry, self.writer,
                                     self.publisher, self.finals, finals_view)
        await self.replays.start()
        await self.executions.start()
        await self.executions.follow([self.topics.invocations])
        await self.sources.start()
        await self._follow_sources()
        await self.deliveries.start()
        await self.deliveries.follow([self.topics.results])
        self._ready.set()
        self._mark_ready()
        log.info("registry loaded: %d functions, %d subscriptions, %d connectors; "
                 "%d recent results remembered", len(self.registry.functions),
                 len(self.registry.subscriptions), len(self.registry.connectors),
                 len(self.finals))
        changed = asyncio.Event()
        self.registry.on_change(lambda kind, ident, record: changed.set())
        while True:
            await changed.wait()
            changed.clear()
            self.connectors.reconcile()
            await self._follow_sources()

    async def _follow_sources(self) -> None:
        """The starter reads the event topic of every source subscribed to."""
        new = sorted(self.registry.sources() - self._followed)
        if not new:
            return
        await ensure_topics(self.settings.kafka, [self.topics.event_topic(s) for s in new])
        await self.sources.follow(self.topics.events(s) for s in new)
        self._followed.update(new)

    async def _on_shutdown(self, sender: Any, /, *args: Any, **kwargs: Any) -> None:
        """Stop connectors and the work in flight (unacknowledged, it is redone by whoever
        gets its partition), then remove this worker's warm containers."""
        if self.connectors is not None:
            await self.connectors.stop()
        if self.replays is not None:
            await self.replays.stop()
        await self._cancel([task for tasks in self._tasks.values() for task in tasks])
        for reader in self.consumptions:
            await reader.stop()
        await self.starter.close()
        if self.callbacks is not None:
            await self.callbacks.stop()
        await self.writer.close()
        if self._runtimes is not None:
            await self._runtimes.close()
        for view in self.views:
            await view.stop()
        await self.publisher.stop()

    async def _executor_revoked(self, lost: set[Partition]) -> None:
        """Most invocations end within the grace, and their offsets are committed. Those
        still running go on until the new assignment says whether this worker keeps their
        partition (their redelivery joins the run in flight: ``Executor.handle``); none
        starts meanwhile, or it could start on the partition's new owner as well."""
        if self.executor is not None:
            self.executor.hold()  # until the new assignment: see _executor_assigned
            await self.executor.quiet(REVOKE_GRACE_S)
        # Let the tasks of what finished acknowledge it (a few steps of the loop); the held
        # ones stay, until the assignment cancels them or lets them run.
        tasks = [task for partition in lost for task in self._tasks.get(partition, ())]
        if tasks:
            await asyncio.wait(tasks, timeout=ACKNOWLEDGE_S)

    async def _executor_assigned(self, assigned: frozenset[Partition]) -> None:
        """Runs of partitions this worker lost are stopped (their new owner redoes them);
        connectors and replays follow the invocations partitions it has.

        Before it runs anything of its new partitions, the worker reads the results topic
        up to its end: their previous owner wrote the final Results of what it finished
        while giving them up, past the last committed offset, and without them in its
        memory of finals this worker would run those invocations again."""
        lost = [p for p in self._tasks if p[0] == self.topics.invocations and p not in assigned]
        await self._cancel([task for p in lost for task in self._tasks.pop(p, ())])
        try:
            if self._finals_view is not None:
                await self._finals_view.sync()
        except BrokerUnavailable as exc:  # at least once still holds: it may run twice
            log.warning("finals not read up to date after a rebalance: %s", exc.message)
        finally:
            if self.executor is not None:
                self.executor.release()
        partitions = {p for t, p in assigned if t == self.topics.invocations}
        if self.connectors is not None:
            self.connectors.assign(partitions)
        if self.replays is not None:
            self.replays.assign(partitions)
        self._executing = True
        self._mark_ready()

    async def _callbacks_assigned(self, assigned: frozenset[Partition]) -> None:
        self._delivering = True
        self._mark_ready()

    async def _finish_or_stop(self, lost: set[Partition]) -> None:
        """The starter's work and the callbacks' are short (invocations queued, a callback
        posted or scheduled): let that of partitions taken away finish, so that their new
        owner does not redo it; stop what does not."""
        tasks = [task for partition in lost for task in self._tasks.pop(partition, ())]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=REVOKE_GRACE_S)
            await self._cancel(list(late))

    async def _cancel(self, tasks: list[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _mark_ready(self) -> None:
        """Once the registry is loaded and partitions are assigned, say so in a file named
        after this process: ``faasflow up`` and the tests wait for it."""
        if self._ready.is_set() and self._executing and self._delivering:
            marker = self.settings.worker_ready_marker(os.getpid())
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()

    # the agents

    async def _starter(self) -> None:
        await self._ready.wait()
        await self._pipeline(self.sources, Event.from_dict, self._start)

    async def _start(self, event: Event, origin: Origin) -> None:
        await self._registry_at(position_required(event))
        source = self.topics.source_of(origin.topic)
        assert source is not None  # the starter reads event topics only
        await self.starter.start(event, source, origin)

    async def _executor(self) -> None:
        await self._ready.wait()
        executor = self.executor
        assert executor is not None

        async def run(invocation: Invocation, origin: Origin) -> None:
            await self._registry_at(position_required(invocation.event))
            await executor.handle(invocation)

        await self._pipeline(self.executions, Invocation.from_dict, run)

    async def _callbacks(self) -> None:
        await self._ready.wait()
        callbacks = self.callbacks
        assert callbacks is not None

        async def deliver(result: Result, origin: Origin) -> None:
            await callbacks.dispatcher.handle(result)

        def wanted(headers: Mapping[str, bytes]) -> bool:
            return may_have_targets(headers, self.registry.has_sinks)

        await self._pipeline(self.deliveries, Result.from_dict, deliver,
                             self.callback_budget, wanted)

    async def _pipeline(self, reader: GroupReader, parse: Callable[[Any], T],
                        handle: Callable[[T, Origin], Awaitable[None]],
                        budget: InflightBudget | None = None,
                        wanted: Callable[[Mapping[str, bytes]], bool] | None = None) -> None:
        """Take each record as it comes and handle it in a task of its own, as far as the
        in-flight budget allows; acknowledge it once handled (an offset is committed only
        when every record before it is acknowledged). A record ``wanted`` says has nothing
        to do, from its headers, is acknowledged at once."""
        budget = budget or self.inflight
        async for delivery in reader.deliveries():
            origin = Origin(delivery.topic, delivery.partition, delivery.offset)
            self.reporter.received(origin)
            if wanted is not None and not wanted(dict(delivery.headers)):
                reader.done(delivery)
                continue
            size = len(delivery.value or b"")
            await budget.take(size)
            task = asyncio.create_task(
                self._one(reader, delivery, origin, size, parse, handle, budget))
            tasks = self._tasks[(origin.topic, origin.partition)]
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def _one(self, reader: GroupReader, delivery: Delivery, origin: Origin, size: int,
                   parse: Callable[[Any], T], handle: Callable[[T, Origin], Awaitable[None]],
                   budget: InflightBudget) -> None:
        value = delivery.value
        try:
            try:
                record = parse(strict_loads(value or b""))
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
                await self._dead(origin, value, Reason.UNDECODABLE, f"undecodable record: {exc!r}")
            else:
                try:
                    await handle(record, origin)
                except Exception as exc:  # a bug of ours: keep the record, move on
                    log.exception("record %s failed", origin.key)
                    await self._dead(origin, value, Reason.INTERNAL, f"internal error: {exc!r}")
            reader.done(delivery)
        finally:
            budget.give_back(size)

    async def _dead(self, origin: Origin, value: bytes | None, reason: Reason, why: str) -> None:
        log.error("dead-lettering %s: %s", origin.key, why)
        letter = of_record(origin, value, reason, why[:4096])
        await durably(f"dead letter of {origin.key}", partial(self.writer.dead_letter, letter))

    async def _registry_at(self, position: int) -> None:
        """Wait until this worker's registry is as new as the event's (or the queued
        invocation's) publisher's was."""
        view = self._registry_view
        assert view is not None
        if view.position(0) < position and not await view.wait_until(
            lambda: view.position(0) >= position, self.settings.worker.registry_sync_timeout_s
        ):
            log.warning("registry still behind offset %d; matching with what it has", position)
