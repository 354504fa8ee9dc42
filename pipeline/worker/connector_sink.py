"""The sink connectors publish through in a worker: their events on their source's topic,
keyed by the connector's name, then their checkpoint on the checkpoints topic.

    <prefix>.events.<source>   key: connector name   its events, in order, in one partition
    <prefix>.checkpoints       key: connector name   {"state": …, "offsets": {partition: next},
                                                      "at": when it was committed}
    <prefix>.deadletter        key: see of_event     its events too large to publish

A checkpoint records the offset its connector's partition had reached, so on resume only
that partition is read, from there on, record by record: what lies past it was
published after the checkpoint (a crash between the two writes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from connectors.base import Checkpoint, Report, Resumption, retrying
from pipeline.budget import SizeBudget
from pipeline.connector_states import Checkpoints
from pipeline.deadletters import DeadLetter, Reason, of_event
from pipeline.errors import BrokerUnavailable, PayloadTooLarge
from pipeline.kafka import Publisher, Written, partition_of, scan, topic_partitions
from pipeline.records import Event, dumps, strict_loads, utc_now
from pipeline.registry import stamp
from pipeline.settings import KafkaSettings
from pipeline.specs import ConnectorSpec
from pipeline.topics import Topics

log = logging.getLogger(__name__)

CONNECTOR_EXTENSION = "faasflowconnector"


@dataclass(frozen=True, slots=True)
class SinkParts:
    """What the sinks of one worker share."""

    topics: Topics
    kafka: KafkaSettings
    budget: SizeBudget
    publisher: Publisher
    checkpoints: Checkpoints
    registry_position: Callable[[], int]


class KafkaSink:
    def __init__(self, spec: ConnectorSpec, parts: SinkParts, report: Report) -> None:
        self._spec = spec
        self._parts = parts
        self.report = report
        self._topic = parts.topics.events(spec.source)
        self._offsets: dict[int, int] = {}  # the next offset, of the partition it writes to

    async def resume(self) -> Resumption:
        parts, name = self._parts, self._spec.name
        stored = parts.checkpoints.latest.get(name)
        offsets = {int(p): o for p, o in (stored or {}).get("offsets", {}).items()}
        partition = partition_of(name, len(await topic_partitions(parts.kafka, self._topic)))
        self._offsets = {partition: offsets[partition]} if partition in offsets else {}
        start = dict(self._offsets)
        mine, read = [], 0
        async for _, offset, key, value in scan(parts.kafka, self._topic, start, [partition]):
            read += 1
            # whatever was read lies before anything this connector publishes next
            self._offsets[partition] = offset + 1
            if key == name.encode() and value is not None:
                mine.append(Event.from_dict(strict_loads(value)))
        log.info("connector %s: resuming from %s[%d]@%s: read %d records, %d of them its "
                 "own published after its checkpoint", name, self._topic, partition,
                 start.get(partition, "start"), read, len(mine))
        return Resumption(stored["state"] if stored is not None else None, mine)

    async def commit(self, events: Sequence[Event], checkpoint: Checkpoint) -> None:
        parts, name = self._parts, self._spec.name
        records, dead = self._encode(events)
        if dead:
            await self._acknowledged(parts.topics.deadletter, [(d.key, d.encode()) for d in dead])
        for w in await self._acknowledged(self._topic, [(name, r) for r in records]):
            self._offsets[w.partition] = max(self._offsets.get(w.partition, 0), w.offset + 1)
        record = dumps({"state": dict(checkpoint), "offsets": self._offsets, "at": utc_now()})
        await self._acknowledged(parts.topics.checkpoints, [(name, record)])
        parts.checkpoints.apply(name.encode(), record)

    async def _acknowledged(self, topic: str,
                            records: Sequence[tuple[str, bytes | None]]) -> list[Written]:
        """``publish_many``, again with backoff while the broker is unavailable; each step
        of a commit is retried alone, so what was acknowledged is not written twice."""
        if not records:
            return []
        again = retrying(f"connector {self._spec.name}: publishing to {topic}",
                         (BrokerUnavailable,), self.report, cap_s=30.0)
        return await again(self._parts.publisher.publish_many, topic, records)

    def _encode(self, events: Sequence[Event]) -> tuple[list[bytes], list[DeadLetter]]:
        """The events as records, and a dead letter for each one larger than the budget."""
        spec, position = self._spec, self._parts.registry_position()
        records, dead = [], []
        for event in events:
            tagged = stamp(replace(event, extensions={**event.extensions,
                                                      CONNECTOR_EXTENSION: spec.name}), position)
            record = dumps(tagged.to_dict())
            try:
                records.append(self._parts.budget.check_event(record))
            except PayloadTooLarge as exc:
                log.warning("connector %s: event %s dead-lettered: %s", spec.name, event.id,
                            exc.message)
                dead.append(of_event(spec.source, tagged, Reason.TOO_LARGE, exc.message))
        return records, dead
