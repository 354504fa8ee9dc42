"""``StoredView`` on the real broker, with an in-memory ``Store``: it resumes from the
stored positions, starts over when they lie outside the topic, and reads again a batch
its store failed to take."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from pipeline.kafka import Publisher, ensure_topics
from pipeline.kafka.stored import Entry, StoredView
from pipeline.settings import KafkaSettings
from pipeline.topics import TopicSpec
from tests.integration.conftest import KafkaContainer


class MemoryStore:
    """A ``Store`` in a dict; its first ``failures`` applies fail as a full disk would."""

    def __init__(self, failures: int = 0) -> None:
        self.rows: dict[bytes, bytes] = {}
        self.offsets: dict[int, int] = {}
        self.failures = failures

    async def positions(self, topic: str) -> dict[int, int]:
        return dict(self.offsets)

    async def apply(self, topic: str, partition: int, entries: Sequence[Entry]) -> int:
        if self.failures:
            self.failures -= 1
            raise OSError("no space left on device")
        for _, key, value in entries:
            assert key is not None
            if value is None:
                self.rows.pop(key, None)
            else:
                self.rows[key] = value
        self.offsets[partition] = entries[-1][0] + 1
        return 0

    async def clear(self, topic: str) -> None:
        self.rows.clear()
        self.offsets.clear()


async def started(kafka: KafkaSettings, topic: str, store: MemoryStore) -> StoredView:
    view = StoredView(kafka, topic, store)
    await view.start()
    await view.stop()
    return view


async def test_a_stored_view_resumes_rebuilds_and_retries(kafka: KafkaContainer) -> None:
    settings = KafkaSettings(bootstrap=kafka.bootstrap)
    topic = f"v{uuid.uuid4().hex[:10]}.results"
    await ensure_topics(settings, [TopicSpec(topic, 2, {"cleanup.policy": "compact"})])
    publisher = Publisher(settings)
    await publisher.start()
    try:
        await publisher.publish_many(topic, [(f"k{n}", b"v") for n in range(10)])
        store = MemoryStore(failures=1)
        first = await started(settings, topic, store)
        assert (len(store.rows), first.read) == (10, 10)  # the failed batch was read again

        await publisher.publish_many(topic, [("k0", None), ("k10", b"v"), ("k11", b"v")])
        again = await started(settings, topic, store)
        assert again.read == 3
        assert (len(store.rows), again.rebuilt) == (11, None)

        store.offsets = {p: offset + 1000 for p, offset in store.offsets.items()}
        rebuilt = await started(settings, topic, store)
        assert rebuilt.rebuilt is not None
        assert "outside" in rebuilt.rebuilt
        assert (rebuilt.read, len(store.rows)) == (13, 11)
    finally:
        await publisher.stop()
