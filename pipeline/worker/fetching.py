"""The one Kafka consumer setting Faust does not let us choose.

Faust builds its consumer with ``fetch_max_wait_ms=1500``, fixed. aiokafka sends one fetch
request per broker for the partitions that have nothing buffered; while it is held (up to
that long, when those partitions stay quiet), records arriving on the other partitions
wait for the next request. With one consumer reading the event topics and the
invocations topic, that made invocations wait seconds under load. ``shorten_fetch_wait``
wraps Faust's consumer factory to use ``worker.fetch_max_wait_ms`` instead.
"""

from __future__ import annotations

import functools
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka


def shorten_fetch_wait(max_wait_ms: int) -> None:
    thread: Any = faust_aiokafka.AIOKafkaConsumerThread
    create = getattr(thread, "_faasflow_create_worker_consumer", None)
    if create is None:
        create = thread._faasflow_create_worker_consumer = thread._create_worker_consumer

    @functools.wraps(create)
    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = create(self, transport)
        consumer._fetch_max_wait_ms = max_wait_ms
        return consumer

    thread._create_worker_consumer = create_worker_consumer
