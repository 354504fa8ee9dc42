"""A view whose state lives on disk with the offsets it has applied, so that a restart
resumes where it stopped instead of reading the whole topic again."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from aiokafka import TopicPartition

from pipeline.kafka.views import CompactedView
from pipeline.settings import KafkaSettings

log = logging.getLogger(__name__)

Entry = tuple[int, bytes | None, bytes | None]  # offset, key, value


class Store(Protocol):
    """Where a ``StoredView`` keeps what it applied."""

    def positions(self, topic: str) -> dict[int, int]:
        """The next offset to apply per partition of ``topic``, as last stored."""
        ...

    async def apply(self, topic: str, partition: int, entries: Sequence[Entry]) -> int:
        """Apply ``entries`` (in offset order) and store the partition's next offset in the
        same transaction; return how many were skipped as unreadable."""
        ...

    async def clear(self, topic: str) -> None:
        """Forget everything applied from ``topic``: it is read again from its beginning."""
        ...


def stale(stored: Mapping[int, int], firsts: Mapping[int, int],
          ends: Mapping[int, int]) -> str | None:
    """Why positions stored earlier cannot be resumed from, or None when they can: a
    partition that is gone, or an offset outside the partition's range (the topic was
    recreated, or the file comes from another cluster)."""
    for partition, offset in sorted(stored.items()):
        if partition not in ends:
            return f"partition {partition} no longer exists"
        if not firsts[partition] <= offset <= ends[partition]:
            return (f"partition {partition}: stored offset {offset} is outside "
                    f"{firsts[partition]}..{ends[partition]}")
    return None


class StoredView(CompactedView):
    """A ``CompactedView`` that hands whole batches, with their offsets, to a ``Store``, and
    starts from the positions the store holds (from the beginning when they are stale).
    ``read`` counts the records read since this process started it; ``rebuilt`` says why
    it started from the beginning when positions were stored."""

    def __init__(self, kafka: KafkaSettings, topic: str, store: Store,
                 sync_timeout_s: float = 30.0) -> None:
        super().__init__(kafka, topic, lambda key, value: None, sync_timeout_s)
        self._store = store
        self.read = 0
        self.rebuilt: str | None = None

    async def _seek_start(self) -> None:
        stored = self._store.positions(self.topic)
        firsts = {tp.partition: o for tp, o in
                  (await self._consumer.beginning_offsets(self._partitions)).items()}
        ends = {tp.partition: o for tp, o in
                (await self._consumer.end_offsets(self._partitions)).items()}
        why = stale(stored, firsts, ends)
        if why is not None:
            log.warning("index of %s: %s; rebuilding it from the beginning", self.topic, why)
            await self._store.clear(self.topic)
            self.rebuilt = why
            stored = {}
        for tp in self._partitions:
            if tp.partition in stored:
                self._consumer.seek(tp, stored[tp.partition])
            else:
                await self._consumer.seek_to_beginning(tp)
        log.info("index of %s: resuming at %s", self.topic, stored or "the beginning")

    async def _apply_batch(self, tp: TopicPartition, messages: list[Any]) -> None:
        self.read += len(messages)
        self.skipped += await self._store.apply(
            self.topic, tp.partition, [(m.offset, m.key, m.value) for m in messages])
