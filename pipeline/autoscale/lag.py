"""The worker's consumer lag, read from Kafka: what the autoscaler follows.

A worker reads in three consumer groups of its own (``pipeline.worker.app``), named after
the topic prefix:

    <prefix>-starter     the event topics <prefix>.events.<source> it follows (those the
                         group has committed in: a source nobody subscribes to is not work)
    <prefix>-executor    <prefix>.invocations
    <prefix>-callbacks   <prefix>.results

The lag is the sum over the three of (log end offset - committed offset) per partition; a
partition a group never committed in counts from its log start, where the group begins
reading it (``pipeline.kafka.admin.LagProbe``).
"""

from __future__ import annotations

import logging

from pipeline.autoscale.policy import Reading
from pipeline.kafka.admin import LagReader, Reads
from pipeline.settings import KafkaSettings
from pipeline.topics import Topics

log = logging.getLogger(__name__)


def starter_reads(topics: Topics) -> Reads:
    """The starter's group and the event topics it follows (see the module docstring)."""
    return Reads(topics.starter_group, prefix=topics.events_prefix)


def worker_groups(topics: Topics) -> list[Reads]:
    """The worker's consumer groups and what each reads (see the module docstring)."""
    return [starter_reads(topics),
            Reads(topics.executor_group, (topics.invocations,)),
            Reads(topics.callbacks_group, (topics.results,))]


class WorkerLag:
    """The worker's lag, through one ``LagReader``. ``read`` raises ``BrokerUnavailable``."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._topics = Topics(kafka)
        self.groups = worker_groups(self._topics)
        self._lag = LagReader(kafka, self.groups)

    async def read(self) -> Reading:
        lag = await self._lag.read()
        log.debug("lag by group: %s", lag.by_group)
        return Reading(lag.total, lag.partitions.get(self._topics.invocations))

    async def close(self) -> None:
        await self._lag.close()
