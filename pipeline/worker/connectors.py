"""Running connectors inside workers: the Kafka sink they publish through, and the
supervisor that starts and stops them as the registry changes.

Each connector runs in exactly one worker: the one assigned the invocations partition
its name hashes to, so adding workers spreads connectors the way Kafka spreads work.
"""

from __future__ import annotations

import asyncio
import json
import logging
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from connectors import catalog
from connectors.base import Backoff, Checkpoint, Resumption, Sink
from pipeline.kafka import Publisher, read_from
from pipeline.records import ConnectorSpec, Event, dumps
from pipeline.registry import Registry, stamp
from pipeline.settings import KafkaSettings
from pipeline.topics import Topics

log = logging.getLogger(__name__)

CONNECTOR_EXTENSION = "faasflowconnector"


class Checkpoints:
    """The latest checkpoint of every connector, fed by a view of the checkpoints topic."""

    def __init__(self) -> None:
        self.latest: dict[str, dict[str, Any]] = {}

    def apply(self, key: bytes, value: bytes | None) -> None:
        if value is None:
            self.latest.pop(key.decode(), None)
        else:
            self.latest[key.decode()] = json.loads(value)


class KafkaSink:
    """Publishes one connector's events keyed by its name (so they stay in order, in one
    partition), then its checkpoint with the end offsets it had reached: on resume, what
    lies past those offsets was published after the checkpoint."""

    def __init__(self, spec: ConnectorSpec, topics: Topics, kafka: KafkaSettings,
                 publisher: Publisher, checkpoints: Checkpoints,
                 registry_position: Callable[[], int]) -> None:
        self._spec = spec
        self._registry_position = registry_position
        self._topics = topics
        self._kafka = kafka
        self._publisher = publisher
        self._checkpoints = checkpoints
        self._offsets: dict[int, int] = {}

    async def resume(self) -> Resumption:
        stored = self._checkpoints.latest.get(self._spec.name)
        if stored is None:
            return Resumption(None, await self._published_after({}))
        self._offsets = {int(p): o for p, o in stored.get("offsets", {}).items()}
        return Resumption(stored["state"], await self._published_after(self._offsets))

    async def _published_after(self, offsets: Mapping[int, int]) -> list[Event]:
        records = await read_from(self._kafka, self._topics.events(self._spec.source), offsets)
        mine = []
        for partition, offset, key, value in records:
            if key == self._spec.name.encode() and value is not None:
                mine.append(Event.from_dict(json.loads(value)))
                self._offsets[partition] = max(self._offsets.get(partition, 0), offset + 1)
        return mine

    async def commit(self, events: Sequence[Event], checkpoint: Checkpoint) -> None:
        position = self._registry_position()
        tagged = [stamp(replace(e, extensions={**e.extensions,
                                               CONNECTOR_EXTENSION: self._spec.name}), position)
                  for e in events]
        written = await self._publisher.publish_many(
            self._topics.events(self._spec.source),
            [(self._spec.name, dumps(e.to_dict())) for e in tagged],
        )
        for w in written:
            self._offsets[w.partition] = max(self._offsets.get(w.partition, 0), w.offset + 1)
        record = {"state": dict(checkpoint), "offsets": self._offsets}
        await self._publisher.publish(self._topics.checkpoints, self._spec.name, dumps(record))
        self._checkpoints.latest[self._spec.name] = json.loads(dumps(record))


class ConnectorSupervisor:
    """Keeps one task per owned connector, restarting a crashed one with backoff."""

    def __init__(self, registry: Registry, partitions: int,
                 make_sink: Callable[[ConnectorSpec], Sink]) -> None:
        self._registry = registry
        self._partitions = partitions
        self._make_sink = make_sink
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
        for name, spec in wanted.items():
            if name not in self._running:
                log.info("starting connector %s (%s → source %s)", name, spec.kind, spec.source)
                task = asyncio.create_task(self._supervise(spec), name=f"connector:{name}")
                self._running[name] = (spec, task)

    async def _supervise(self, spec: ConnectorSpec) -> None:
        backoff = Backoff(base_s=1.0, cap_s=60.0)
        while True:
            try:
                await catalog.build(spec).run(self._make_sink(spec))
            except asyncio.CancelledError:
                raise
            except Exception:
                delay = backoff.next_delay()
                log.exception("connector %s crashed; restarting in %.1fs", spec.name, delay)
                await asyncio.sleep(delay)

    async def stop(self) -> None:
        tasks = [task for _, task in self._running.values()]
        self._running.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def running(self) -> list[str]:
        return sorted(self._running)
