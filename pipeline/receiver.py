"""Webhook ingest: verify a delivery, publish it once, answer with its event id.

    POST /hooks/ID ─► verify (scheme, unexpired secrets, now) ─► 401, nothing published
                   └► delivery id? ─► seen ──────────────────► 202, the same event id
                                  └► new ─► publish event (acks=all) ─► record delivery ─► 202

A delivery the sender names (``webhook-id``, ``X-GitHub-Delivery``, a Stripe event id, or
the webhook's configured header) gets an event id derived from (webhook, delivery), and is
recorded in the compacted ``deliveries`` topic once its event is acknowledged. Every gateway
materializes that topic, so a retry is recognized after a restart and by another gateway.
Two identical deliveries racing into one gateway share one publish; racing into two
gateways they may both publish, but under one event id, so the starter derives the same
invocation ids and the Results collapse.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from connectors.webhooks import lower_case, verifier
from connectors.webhooks.events import webhook_event
from connectors.webhooks.rotation import active
from pipeline.budget import SizeBudget
from pipeline.errors import BrokerUnavailable, InvalidRequest, VerificationFailed
from pipeline.ids import delivery_event_id, new_event_id
from pipeline.kafka import Written
from pipeline.observability.logs import log_context
from pipeline.records import Event, dumps, strict_loads
from pipeline.registry import Registry, stamp
from pipeline.specs import Webhook
from pipeline.topics import Topics

log = logging.getLogger(__name__)

MAX_DELIVERY_ID = 200


class EventLog(Protocol):
    async def publish(self, topic: str, key: str, value: bytes | None) -> Written: ...


def delivery_key(webhook_id: str, delivery_id: str) -> str:
    return f"{webhook_id}/{delivery_id}"


class Deliveries:
    """The deliveries already published, as the compacted deliveries topic holds them.

    Entries older than ``retention_s`` are forgotten here as Kafka forgets them there, so
    memory stays bounded by the deliveries of one retention period."""

    def __init__(self, retention_s: float, clock: Callable[[], float] = time.time) -> None:
        self._retention_s = retention_s
        self._clock = clock
        self._seen: dict[str, float] = {}  # key → received at, oldest first

    def apply(self, key: bytes, value: bytes | None) -> None:
        if value is None:
            self._seen.pop(key.decode(), None)
            return
        self.add(key.decode(), float(strict_loads(value)["received_at"]))

    def add(self, key: str, received_at: float) -> None:
        self._seen.pop(key, None)
        self._seen[key] = received_at
        self._forget(self._clock() - self._retention_s)

    def _forget(self, before: float) -> None:
        while self._seen:
            oldest = next(iter(self._seen))
            if self._seen[oldest] >= before:
                return
            del self._seen[oldest]

    def __contains__(self, key: str) -> bool:
        return key in self._seen

    def __len__(self) -> int:
        return len(self._seen)


@dataclass(frozen=True, slots=True)
class Receipt:
    event_id: str
    duplicate: bool = False


class WebhookReceiver:
    def __init__(self, topics: Topics, publisher: EventLog, registry: Registry,
                 deliveries: Deliveries, budget: SizeBudget,
                 clock: Callable[[], float] = time.time,
                 registry_position: Callable[[], int] = lambda: 0) -> None:
        self._topics = topics
        self._budget = budget
        self._registry_position = registry_position
        self._publisher = publisher
        self._registry = registry
        self._deliveries = deliveries
        self._clock = clock
        self._inflight: dict[str, asyncio.Task[None]] = {}

    async def receive(self, ident: str, headers: Mapping[str, str], body: bytes) -> Receipt:
        """Publish one delivery to webhook ``ident``; raises ``NotFound``,
        ``VerificationFailed`` or ``PayloadTooLarge`` (nothing published), or
        ``BrokerUnavailable``."""
        hook = self._registry.webhook(ident)
        headers = lower_case(headers)
        delivery = self._verify(hook, headers, body)
        if delivery is None:
            event = webhook_event(hook, new_event_id(), headers, body, None)
            await self._publish(event)
            return Receipt(event.id)
        key = delivery_key(hook.id, delivery)
        event = webhook_event(hook, delivery_event_id(hook.id, delivery), headers, body, delivery)
        if key in self._deliveries:
            log.info("webhook %s delivery %s again: event %s", hook.id, delivery, event.id)
            return Receipt(event.id, duplicate=True)
        task = self._inflight.get(key)
        duplicate = task is not None
        if task is None:
            task = asyncio.create_task(self._publish_delivery(key, event))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._settle(key, done))
        await asyncio.shield(task)
        return Receipt(event.id, duplicate)

    def _verify(self, hook: Webhook, headers: Mapping[str, str], body: bytes) -> str | None:
        now = self._clock()
        try:
            named = verifier(hook.scheme).verify(headers, body, active(hook, now), now)
        except VerificationFailed as exc:
            log.warning("webhook %s refused a delivery: %s", hook.id, exc.check)
            raise
        if named is None and hook.delivery_header:
            named = headers.get(hook.delivery_header, "").strip() or None
        if named is not None and len(named) > MAX_DELIVERY_ID:
            raise InvalidRequest(f"a delivery id has at most {MAX_DELIVERY_ID} characters")
        return named

    async def _publish(self, event: Event) -> None:
        with log_context(event_id=event.id, source=event.source):
            event = stamp(event, self._registry_position())
            await self._publisher.publish(self._topics.events(event.source), event.id,
                                          self._budget.encode_event(event))
            log.info("webhook %s: event %s published to source %s",
                     event.extensions.get("faasflowwebhook"), event.id, event.source)

    async def _publish_delivery(self, key: str, event: Event) -> None:
        await self._publish(event)
        received_at = self._clock()
        record = dumps({"event_id": event.id, "received_at": received_at})
        try:
            await self._publisher.publish(self._topics.deliveries, key, record)
        except BrokerUnavailable as exc:
            # The event is in Kafka, so the sender gets its 202; a retry reaching another
            # gateway may publish it again, under the same event id.
            log.warning("delivery %s of event %s not recorded: %s", key, event.id, exc.message)
        self._deliveries.add(key, received_at)

    def _settle(self, key: str, task: asyncio.Task[None]) -> None:
        self._inflight.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here, whether or not a request still awaits it
