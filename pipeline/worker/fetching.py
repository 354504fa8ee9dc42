"""Two things about Faust's Kafka consumer that faasflow must set itself.

1. Faust builds its consumer with ``fetch_max_wait_ms=1500``, fixed. aiokafka sends one
   fetch request per broker for the partitions that have nothing buffered; while it is
   held (up to that long, when those partitions stay quiet), records arriving on the other
   partitions wait for the next request. With one consumer reading the event topics and
   the invocations topic, that made invocations wait seconds under load. The wait is
   ``worker.fetch_max_wait_ms`` instead.

2. A record can be lost to a rebalance. Faust's fetch loop hands each fetched record to
   the agents' queues, but stops waiting when a rebalance suspends the flow, and then
   marks the record read anyway (``faust/transport/consumer.py``, ``_drain_messages``).
   After the rebalance Faust seeks every partition back to its committed offset, and that
   undoes the loss, except where nothing was committed yet: aiokafka's
   ``seek_to_committed`` leaves such a partition where the fetcher stood, past the lost
   record. The starter subscribes to new event topics at run time, so a new source's
   first events arrive exactly then. Here a partition without a committed offset is sought
   to its beginning instead: what ``auto_offset_reset=earliest`` meant all along. Records
   read twice that way are harmless (invocation ids are derived; ``pipeline.finals``).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

log = logging.getLogger(__name__)


def adjust_consumer(max_wait_ms: int) -> None:
    thread: Any = faust_aiokafka.AIOKafkaConsumerThread
    create = getattr(thread, "_faasflow_create_worker_consumer", None)
    if create is None:
        create = thread._faasflow_create_worker_consumer = thread._create_worker_consumer

    @functools.wraps(create)
    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = create(self, transport)
        consumer._fetch_max_wait_ms = max_wait_ms
        consumer.seek_to_committed = _from_the_beginning_when_uncommitted(
            consumer, consumer.seek_to_committed)
        return consumer

    thread._create_worker_consumer = create_worker_consumer


def _from_the_beginning_when_uncommitted(consumer: Any, seek_to_committed: Any) -> Any:
    @functools.wraps(seek_to_committed)
    async def seek(*partitions: Any) -> Any:
        committed = await seek_to_committed(*partitions)
        fresh = [tp for tp, offset in committed.items() if not offset or offset < 0]
        if fresh:
            # Not seek_to_beginning: it waits for the fetcher to reset the positions, and
            # the fetcher leaves the partitions Faust paused for its recovery alone (Faust's
            # recovery then hung for aiokafka's whole request timeout).
            log.debug("no committed offset for %s: reading from the beginning", fresh)
            for tp, offset in (await consumer.beginning_offsets(fresh)).items():
                consumer.seek(tp, offset)
        return committed

    return seek
