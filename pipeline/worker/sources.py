"""Subscribing the starter to event topics created after the worker started.

Faust subscribes by topic name only (its aiokafka driver ignores ``Topic.pattern``), and
waits 45 s after a subscription change before it resubscribes. ``SourceTopics`` works
within that: the starter's channel, and every clone Faust makes of it, share one list of
topic names; appending to it and flagging the conductor makes the next rebalance assign
the new topic's partitions to the starter. The wait is shortened
to ``worker.resubscribe_delay_s``. This is the one place that touches Faust internals;
everything else uses its public API.
"""

from __future__ import annotations

import logging
from typing import Any

import faust

from pipeline.kafka import ensure_topics
from pipeline.settings import KafkaSettings
from pipeline.topics import Topics

log = logging.getLogger(__name__)


class _SharedNames(list[str]):
    """Faust copies a channel's topics as ``topics or []``, which swaps an empty list for a
    new one; a list that is never falsy stays shared by every clone."""

    def __bool__(self) -> bool:
        return True


class SourceTopics:
    def __init__(self, app: faust.App, topics: Topics, kafka: KafkaSettings,
                 resubscribe_delay_s: float) -> None:
        self._app = app
        self._topics = topics
        self._kafka = kafka
        self._delay = resubscribe_delay_s
        self.names: list[str] = _SharedNames()
        self._channel = faust.Topic(self._app, key_serializer="raw", value_serializer="raw")
        self._channel.topics = self.names

    def channel(self) -> faust.Topic:
        """The starter's channel; its topic list is ``self.names``."""
        return self._channel

    async def follow(self, sources: set[str]) -> None:
        """Make sure the starter consumes every source in ``sources``."""
        specs = [self._topics.event_topic(s) for s in sorted(sources)]
        missing = [spec for spec in specs if spec.name not in self.names]
        if not missing:
            return
        await ensure_topics(self._kafka, missing)
        self.names.extend(spec.name for spec in missing)
        self._resubscribe()
        log.info("starter now follows %s", ", ".join(spec.name for spec in missing))

    def check(self) -> None:
        """Resubscribe if a change was lost: Faust drops a subscription change that arrives
        while it is rebalancing, and would not try again until the next change."""
        subscribed = self._app.topics._topic_name_index  # type: ignore[attr-defined]
        lost = [name for name in self.names if name not in subscribed]
        if lost and not self._app.rebalancing:
            log.info("resubscribing for %s", ", ".join(lost))
            self._resubscribe()

    def _resubscribe(self) -> None:
        conductor: Any = self._app.topics
        conductor._resubscribe_sleep_lock_seconds = self._delay
        conductor._flag_changes()
