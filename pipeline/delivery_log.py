"""A webhook's last accepted deliveries, read back from the log.

Every delivery a webhook accepts is an event on its source's topic, with the extensions
``faasflowwebhook`` (the webhook's id) and, when the sender named it, ``faasflowdelivery``.
So the log answers "what did this webhook accept lately", the same in every gateway
process, without a store of its own. (The compacted ``deliveries`` topic cannot: it holds
only the deliveries a sender named, and only as deduplication keys.)

Each partition of the source's topic is read back from its end, at most ``WINDOW``
records, whatever the webhook: on a busy source shared by several webhooks and connectors
the cost stays bounded, and a webhook's deliveries older than that window (or past the
topic's retention) are not shown. What the window holds is kept when its
``faasflowwebhook`` names the webhook, newest first by the event's ``time``, each event
once (two gateways racing on one named delivery may both publish it, under one event id).

Refused requests (401: verification failed; 413: over the size budget) are never
published, so they never appear here: ``/metrics`` counts them, as
``faasflow_http_requests_total`` by status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.kafka import Record, broker_errors
from pipeline.kafka.ranges import read_ranges, topic_offsets
from pipeline.records import Event, Position, strict_loads
from pipeline.settings import KafkaSettings
from pipeline.specs import Webhook
from pipeline.topics import Topics

log = logging.getLogger(__name__)

WINDOW = 500  # records read back per partition of a source's topic
WEBHOOK = "faasflowwebhook"
DELIVERY = "faasflowdelivery"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One accepted delivery, as its event on the source's topic tells it."""

    event_id: str
    received_at: str  # the event's time (RFC 3339, UTC), stamped by the gateway
    type: str
    delivery_id: str | None  # the sender's name for it, when it gave one
    size: int  # bytes of the event's data (a JSON body as functions get it: compact)
    content_type: str | None
    event_position: Position  # in the source's topic

    def to_dict(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "received_at": self.received_at, "type": self.type,
                "delivery_id": self.delivery_id, "size": self.size,
                "content_type": self.content_type,
                "event_position": self.event_position.to_dict()}


def delivery_of(record: Record, webhooks: Collection[str]) -> tuple[str, Delivery] | None:
    """The delivery ``record`` (of a source's topic) is, and to which of ``webhooks``; None
    for any other event, and for a record that is no event."""
    partition, offset, _, value = record
    # A webhook's id is a plain token, so an event of its webhook holds it as written:
    # most records of a busy source are skipped here, without being decoded.
    if not value or not any(ident.encode() in value for ident in webhooks):
        return None
    try:
        event = Event.from_dict(strict_loads(value))
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("skipping an unreadable event at partition %d offset %d: %r", partition,
                    offset, exc)
        return None
    webhook = event.extensions.get(WEBHOOK)
    if webhook is None or webhook not in webhooks:
        return None
    return webhook, Delivery(
        event_id=event.id, received_at=event.time, type=event.type,
        delivery_id=event.extensions.get(DELIVERY), size=len(event.data),
        content_type=event.datacontenttype, event_position=Position(partition, offset))


def newest(deliveries: Iterable[Delivery], limit: int) -> list[Delivery]:
    """At most ``limit`` of ``deliveries``, newest first, each event once (its latest
    record). Times stamped by the gateways sort as text (RFC 3339 UTC, microseconds); the
    position orders what one moment stamped."""
    ordered = sorted(deliveries, reverse=True,
                     key=lambda d: (d.received_at, d.event_position.offset,
                                    d.event_position.partition))
    shown: dict[str, Delivery] = {}
    for delivery in ordered:
        shown.setdefault(delivery.event_id, delivery)
        if len(shown) == limit:
            break
    return list(shown.values())


def window(beginnings: Mapping[int, int], ends: Mapping[int, int],
           size: int) -> dict[int, tuple[int, int]]:
    """The last ``size`` offsets of each partition that it still holds."""
    return {p: (max(beginnings.get(p, 0), end - size), end) for p, end in ends.items()}


class DeliveryLog:
    def __init__(self, kafka: KafkaSettings, topics: Topics, size: int = WINDOW) -> None:
        self._kafka = kafka
        self._topics = topics
        self._size = size
        # A read that outlives this is the broker gone (``read_ranges`` waits for it)
        self._timeout_s = kafka.publish_timeout_s * 3

    async def last(self, hooks: Iterable[Webhook], limit: int) -> dict[str, list[Delivery]]:
        """Each webhook's last ``limit`` deliveries (by its id); the webhooks of one
        source in one read of its topic, the sources at once. ``BrokerUnavailable`` when
        Kafka does not answer."""
        by_source: dict[str, list[str]] = {}
        for hook in hooks:
            by_source.setdefault(hook.source, []).append(hook.id)
        read = await asyncio.gather(*(self._read(source, webhooks, limit)
                                      for source, webhooks in by_source.items()))
        return {ident: found for part in read for ident, found in part.items()}

    async def _read(self, source: str, webhooks: Sequence[str],
                    limit: int) -> dict[str, list[Delivery]]:
        topic = self._topics.events(source)
        found: dict[str, list[Delivery]] = {ident: [] for ident in webhooks}
        with broker_errors(f"reading the last deliveries of {topic}"):
            async with asyncio.timeout(self._timeout_s):
                beginnings, ends, _ = await topic_offsets(self._kafka, topic, ())
                ranges = window(beginnings, ends, self._size)
                async for batch in read_ranges(self._kafka, topic, ranges, self._size):
                    for record in batch:
                        hit = delivery_of(record, found.keys())
                        if hit is not None:
                            found[hit[0]].append(hit[1])
        return {ident: newest(deliveries, limit) for ident, deliveries in found.items()}
