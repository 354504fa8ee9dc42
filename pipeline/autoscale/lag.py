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
from pipeline.errors import BrokerUnavailable
from pipeline.kafka.admin import LagProbe, Reads
from pipeline.settings import KafkaSettings
from pipeline.topics import Topics

log = logging.getLogger(__name__)


def worker_groups(topics: Topics) -> list[Reads]:
    """The worker's consumer groups and what each reads (see the module docstring)."""
    return [Reads(topics.starter_group, prefix=topics.events_prefix),
            Reads(topics.executor_group, (topics.invocations,)),
            Reads(topics.callbacks_group, (topics.results,))]


class WorkerLag:
    """Reads the lag with one ``LagProbe``, made at the first reading and made anew after a
    failed one (its connections may be what failed). ``read`` raises ``BrokerUnavailable``."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._kafka = kafka
        self._topics = Topics(kafka)
        self.groups = worker_groups(self._topics)
        self._probe: LagProbe | None = None

    async def read(self) -> Reading:
        try:
            if self._probe is None:
                probe = LagProbe(self._kafka, self.groups)
                self._probe = probe
                await probe.start()
            lag = await self._probe.read()
        except BrokerUnavailable:
            await self.close()
            raise
        log.debug("lag by group: %s", dict(lag.by_group))
        return Reading(lag.total, lag.partitions.get(self._topics.invocations))

    async def close(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None:
            try:
                await probe.stop()
            except Exception as exc:  # closing what failed: nothing more to do about it
                log.debug("stopping the lag probe: %r", exc)
