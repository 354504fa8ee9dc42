"""Topic names and their configuration: the table in DESIGN.md, in code."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipeline.errors import InvalidRequest
from pipeline.settings import KafkaSettings

SOURCE_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")


def check_source(source: str) -> str:
    """Sources become topic names, so they are held to Kafka's character set."""
    if not SOURCE_PATTERN.fullmatch(source):
        raise InvalidRequest(
            f"invalid source {source!r}: use 1-100 of a-z 0-9 . _ - starting with a letter or digit"
        )
    return source


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


class Topics:
    """Every topic name of one deployment, derived from its prefix."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._kafka = kafka
        self.prefix = kafka.topic_prefix
        self.registry = f"{self.prefix}.registry"
        self.invocations = f"{self.prefix}.invocations"
        self.results = f"{self.prefix}.results"
        self.deadletter = f"{self.prefix}.deadletter"
        self.checkpoints = f"{self.prefix}.checkpoints"
        self.connectors = f"{self.prefix}.connectors"
        self.deliveries = f"{self.prefix}.deliveries"
        self.replays = f"{self.prefix}.replays"
        self.callbacks = f"{self.prefix}.callbacks"
        self.callback_targets = f"{self.prefix}.callback-targets"
        self.events_prefix = f"{self.prefix}.events."
        # The worker's consumer groups (``pipeline.worker.app``; the autoscaler reads their
        # lag): the event topics, the invocations, the results.
        self.starter_group = f"{self.prefix}-starter"
        self.executor_group = f"{self.prefix}-executor"
        self.callbacks_group = f"{self.prefix}-callbacks"

    def events(self, source: str) -> str:
        return self.events_prefix + check_source(source)

    def source_of(self, topic: str) -> str | None:
        if topic.startswith(self.events_prefix):
            return topic[len(self.events_prefix):]
        return None

    def core(self) -> list[TopicSpec]:
        compact = {**self._sized, "cleanup.policy": "compact",
                   "min.cleanable.dirty.ratio": "0.1", "segment.ms": str(3600 * 1000)}
        n = self._kafka.partitions
        return [
            # One partition: registry records are few, and one order makes replays simple.
            TopicSpec(self.registry, 1, compact),
            TopicSpec(self.invocations, n, self._sized),
            TopicSpec(self.results, n, compact),
            TopicSpec(self.deadletter, n, self._sized),
            TopicSpec(self.checkpoints, 1, compact),
            TopicSpec(self.connectors, 1, compact),  # connector states, key: connector name
            TopicSpec(self.replays, 1, compact),  # replays and their progress, key: replay id
            # Callback and sink deliveries of final Results, key: invocation id/target
            TopicSpec(self.callbacks, n, compact),
            # Circuit breakers of callback and sink targets, key: URL origin
            TopicSpec(self.callback_targets, 1, compact),
            # Webhook deliveries already published (key webhook/delivery): compacted, and
            # forgotten after the retention, which bounds how long a retry is recognized.
            TopicSpec(self.deliveries, n, {**compact, "cleanup.policy": "compact,delete",
                                           "retention.ms": str(self._kafka.delivery_retention_ms)}),
        ]

    def event_topic(self, source: str) -> TopicSpec:
        return TopicSpec(
            self.events(source),
            self._kafka.partitions,
            {**self._sized, "cleanup.policy": "delete",
             "retention.ms": str(self._kafka.event_retention_ms)},
        )

    @property
    def _sized(self) -> dict[str, str]:
        """Every topic takes the largest record the size budget allows (``pipeline.budget``)."""
        return {"max.message.bytes": str(self._kafka.message_bytes)}
