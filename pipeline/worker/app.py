"""The worker: a Faust app whose agents start and execute invocations.

    faasflow.events.<source> ─► starter ─► faasflow.invocations ─► executor ─► faasflow.results

Agents stay thin: decode, call the core (``pipeline.execution``), produce, and only then
let Faust acknowledge the input, so a worker that dies mid-way redoes the work after a
restart (at-least-once; results are idempotent because invocation ids are derived).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import faust

from pipeline.errors import RetryableError, Superseded
from pipeline.execution import execute, failed, pending, plan_invocations, running
from pipeline.kafka import CompactedView, Publisher, ensure_topics, wait_for_broker
from pipeline.records import Event, Invocation, Result, dumps
from pipeline.registry import Registry, position_required
from pipeline.runtime.runtimes import Runtimes
from pipeline.settings import Settings
from pipeline.topics import Topics
from pipeline.worker.connectors import Checkpoints, ConnectorSupervisor, KafkaSink
from pipeline.worker.fetching import shorten_fetch_wait
from pipeline.worker.sources import SourceTopics

log = logging.getLogger(__name__)

RETRY_MAX_S = 30.0
SUBSCRIPTION_CHECK_S = 2.0
STARTER_IN_FLIGHT = 512  # events whose writes may be in flight at once
T = TypeVar("T")


def faust_app(settings: Settings, topics: Topics) -> faust.App:
    kafka = settings.kafka
    shorten_fetch_wait(settings.worker.fetch_max_wait_ms)
    return faust.App(
        f"{topics.prefix}-worker",
        broker=[f"kafka://{s}" for s in kafka.bootstrap_servers().split(",")],
        key_serializer="raw",
        value_serializer="raw",
        store="memory://",
        datadir=str(settings.state_dir / "faust"),  # not the working directory
        web_enabled=False,
        topic_allow_declare=False,
        topic_disable_leader=True,
        producer_acks=-1,
        broker_session_timeout=kafka.session_timeout_s,
        broker_heartbeat_interval=min(3.0, kafka.session_timeout_s / 3),
        broker_commit_every=100,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
    )


class Worker:
    """Owns the Faust app, the registry view and the runner for one worker process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = Topics(settings.kafka)
        self.registry = Registry()
        self.app = faust_app(settings, self.topics)
        self.sources = SourceTopics(self.app, self.topics, settings.kafka,
                                    settings.worker.resubscribe_delay_s)
        self._runtimes: Runtimes | None = None
        self._view: CompactedView | None = None
        self._ready = asyncio.Event()
        self._inflight: dict[str, asyncio.Future[Result]] = {}
        self.checkpoints = Checkpoints()
        self.connectors: ConnectorSupervisor | None = None
        self._assigned: set[int] = set()
        self._rebalanced = False
        self.app.on_partitions_assigned.connect(self._on_partitions_assigned)
        self.app.on_before_shutdown.connect(self._on_shutdown)
        self._invocations = self.app.topic(self.topics.invocations)
        self._results = self.app.topic(self.topics.results)
        self._deadletter = self.app.topic(self.topics.deadletter)
        self.app.agent(self.sources.channel(), name="starter")(self._starter)
        self.app.agent(self._invocations, name="executor",
                       concurrency=settings.worker.executor_concurrency)(self._executor)
        self.app.task(self._follow_registry)

    async def prepare(self) -> None:
        """Before Faust starts: topics exist, and the starter knows today's sources."""
        await wait_for_broker(self.settings.kafka, timeout_s=60)
        await ensure_topics(self.settings.kafka, self.topics.core())
        registry = Registry()
        view = CompactedView(self.settings.kafka, self.topics.registry, registry.apply)
        await view.start()
        await view.stop()
        await self.sources.follow(registry.sources())

    async def _follow_registry(self) -> None:
        kafka = self.settings.kafka
        self._view = view = CompactedView(kafka, self.topics.registry, self.registry.apply)
        await view.start()
        self._runtimes = Runtimes(self.settings)
        await self._runtimes.start(self.registry)
        await CompactedView(kafka, self.topics.checkpoints, self.checkpoints.apply).start()
        publisher = Publisher(kafka)
        await publisher.start()
        self.connectors = ConnectorSupervisor(
            self.registry, kafka.partitions,
            lambda spec: KafkaSink(spec, self.topics, kafka, publisher, self.checkpoints,
                                   lambda: view.position(0)),
        )
        self.connectors.assign(self._assigned)
        await self.sources.follow(self.registry.sources())
        self._ready.set()
        self._mark_ready()
        log.info("registry loaded: %d functions, %d subscriptions, %d connectors",
                 len(self.registry.functions), len(self.registry.subscriptions),
                 len(self.registry.connectors))
        changed = asyncio.Event()
        self.registry.on_change(lambda kind, ident, record: changed.set())
        while True:
            try:
                await asyncio.wait_for(changed.wait(), timeout=SUBSCRIPTION_CHECK_S)
            except TimeoutError:
                self.sources.check()
                continue
            changed.clear()
            self.connectors.reconcile()
            await self.sources.follow(self.registry.sources())

    async def _on_shutdown(self, sender: Any, /, *args: Any, **kwargs: Any) -> None:
        """Stop connectors and remove this worker's warm containers."""
        if self.connectors is not None:
            await self.connectors.stop()
        if self._runtimes is not None:
            await self._runtimes.close()

    async def _on_partitions_assigned(self, sender: Any, /, *args: Any, **kwargs: Any) -> None:
        """Connectors follow the invocations partitions this worker was assigned."""
        (assigned,) = args  # Faust sends the whole new assignment
        self._assigned = {tp.partition for tp in assigned if tp.topic == self.topics.invocations}
        self._rebalanced = True
        if self.connectors is not None:
            self.connectors.assign(self._assigned)
        self._mark_ready()

    def _mark_ready(self) -> None:
        """Once the registry is loaded and partitions are assigned, say so in a file named
        after this process: ``faasflow up`` and the tests wait for it."""
        if self._ready.is_set() and self._rebalanced:
            marker = self.settings.worker_ready_marker(os.getpid())
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()

    async def _starter(self, stream: faust.StreamT[Any]) -> None:
        """Events are pipelined: the next is planned while the last one's writes are in
        flight, and each event is acknowledged to Faust only once its writes are (so an
        offset is never committed past an event whose invocations were not written)."""
        await self._ready.wait()
        stream.enable_acks = False  # acknowledged in _start, after the writes
        in_flight: set[asyncio.Task[None]] = set()
        async for event in stream.events():
            message = event.message
            decoded = await self._decode(message, Event.from_dict)
            if decoded is None:
                await stream.ack(event)
                continue
            await self._registry_at(position_required(decoded))
            invocations = plan_invocations(decoded, self.registry,
                                           source=self.topics.source_of(message.topic))
            task = asyncio.create_task(self._start(stream, event, decoded, invocations))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            if len(in_flight) >= STARTER_IN_FLIGHT:
                await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)

    async def _start(self, stream: faust.StreamT[Any], event: Any, decoded: Event,
                     invocations: list[Invocation]) -> None:
        message = event.message
        try:
            await asyncio.gather(
                *(self._send(self._results, i.id, dumps(pending(i).to_dict()))
                  for i in invocations),
                *(self._send(self._invocations, i.function, dumps(i.to_dict()))
                  for i in invocations),
            )
        except Exception as exc:
            # Unacknowledged, the event is redelivered once the worker restarts.
            log.error("event %s from %s[%d]@%d not started: %s", decoded.id, message.topic,
                      message.partition, message.offset, exc)
            await self.app.crash(exc)
            return
        await stream.ack(event)
        log.debug("event %s from %s[%d]@%d: %d invocations", decoded.id, message.topic,
                  message.partition, message.offset, len(invocations))

    async def _registry_at(self, position: int) -> None:
        """Wait until this worker's registry is as new as the event's publisher's was."""
        view = self._view
        assert view is not None
        if view.position(0) < position and not await view.wait_until(
            lambda: view.position(0) >= position, self.settings.worker.registry_sync_timeout_s
        ):
            log.warning("registry still behind offset %d; matching with what it has", position)

    async def _executor(self, stream: faust.StreamT[Any]) -> None:
        await self._ready.wait()
        async for event in stream.events():
            invocation = await self._decode(event.message, Invocation.from_dict)
            if invocation is None:
                continue
            try:
                result = await self._run_once(invocation)
            except Superseded as exc:
                log.info("%s; not writing its result", exc)
                continue
            await self._send(self._results, invocation.id, dumps(result.to_dict()))

    async def _run_once(self, invocation: Invocation) -> Result:
        """Kafka may redeliver an invocation still running here (after a rebalance): the
        copy waits for the running one instead of starting a second container."""
        running_run = self._inflight.get(invocation.id)
        if running_run is not None:
            return await asyncio.shield(running_run)
        run = asyncio.ensure_future(self._run(invocation))
        self._inflight[invocation.id] = run
        try:
            return await asyncio.shield(run)
        finally:
            if run.done():
                self._inflight.pop(invocation.id, None)

    async def _run(self, invocation: Invocation) -> Result:
        function = self.registry.functions.get(invocation.function)
        if function is None:
            return failed(invocation, f"function {invocation.function!r} does not exist")
        assert self._runtimes is not None
        # Not waiting for this write's ack: the final Result, written by this producer to
        # the same partition, lands after it and is awaited.
        await self._results.send(key=invocation.id.encode(),
                                 value=dumps(running(invocation, function).to_dict()))
        delay = 0.5
        while True:
            try:
                return await execute(invocation, function, self._runtimes)
            except RetryableError as exc:
                log.warning("invocation %s not run, retrying in %.1fs: %s",
                            invocation.id, delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)

    async def _send(self, topic: faust.TopicT, key: str, value: bytes) -> None:
        """Produce and wait for the broker's acknowledgement."""
        delivery = await topic.send(key=key.encode(), value=value)
        await delivery

    async def _decode(self, message: Any, parse: Callable[[dict[str, Any]], T]) -> T | None:
        """The record in ``message``, or None once it has been dead-lettered."""
        try:
            return parse(json.loads(message.value))
        except (ValueError, KeyError, TypeError) as exc:
            await self._dead(message, f"undecodable record: {exc!r}")
            return None

    async def _dead(self, message: Any, reason: str) -> None:
        log.error("dead-lettering %s[%d]@%d: %s", message.topic, message.partition,
                  message.offset, reason)
        await self._send(self._deadletter, f"{message.topic}/{message.partition}/{message.offset}",
                         dumps({"topic": message.topic, "partition": message.partition,
                                "offset": message.offset, "reason": reason,
                                "value": (message.value or b"").decode(errors="replace")}))

