"""The registry: functions, webhooks and subscriptions, materialized from a compacted topic.

Every record is keyed ``kind/id``; the newest value wins and a tombstone (``None``)
deletes. The gateway and each worker hold one ``Registry`` fed by a ``CompactedView``;
there is no other database.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pipeline.errors import NotFound
from pipeline.records import Event, Invocation, dumps, strict_loads
from pipeline.specs import (
    ConnectorSpec,
    FunctionSpec,
    Resource,
    Secret,
    Sink,
    Subscription,
    Webhook,
)

log = logging.getLogger(__name__)

Record = FunctionSpec | Webhook | Subscription | ConnectorSpec | Secret | Sink | Resource
_KINDS: dict[str, type[Record]] = {
    "function": FunctionSpec,
    "webhook": Webhook,
    "subscription": Subscription,
    "connector": ConnectorSpec,
    "secret": Secret,
    "sink": Sink,
    "resource": Resource,
}


Listener = Callable[[str, str, Record | None], None]

POSITION_EXTENSION = "faasflowregistry"


def stamp(event: Event, position: int) -> Event:
    """Note on the event how far its publisher had read the registry (the registry topic
    has one partition, so one offset says it). The starter matches the event only once
    its own registry is at least that far: a subscription made before an event was
    published is always seen, with no round trip to Kafka per event."""
    return replace(event, extensions={**event.extensions, POSITION_EXTENSION: str(position)})


def stamp_invocation(invocation: Invocation, position: int) -> Invocation:
    """``stamp`` for an invocation queued without the starter (an asynchronous call, a
    redrive): the executor runs it only once its registry is that far, so a run queued right
    after a deploy finds the function, and a redrive right after a fix runs the fix."""
    return replace(invocation, event=stamp(invocation.event, position))


def position_required(event: Event) -> int:
    value = event.extensions.get(POSITION_EXTENSION, "0")
    return int(value) if value.isdigit() else 0


def record_key(record: Record) -> str:
    if isinstance(record, FunctionSpec):
        return f"function/{record.name}"
    if isinstance(record, Webhook):
        return f"webhook/{record.id}"
    if isinstance(record, ConnectorSpec):
        return f"connector/{record.name}"
    if isinstance(record, Secret):
        return f"secret/{record.name}"
    if isinstance(record, Sink):
        return f"sink/{record.id}"
    if isinstance(record, Resource):
        return f"resource/{record.ident}"
    return f"subscription/{record.id}"


def encode(record: Record) -> bytes:
    return dumps(record.to_dict())


class Registry:
    """The current registry state; ``apply`` is the only way it changes."""

    def __init__(self) -> None:
        self.functions: dict[str, FunctionSpec] = {}
        self.webhooks: dict[str, Webhook] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self.connectors: dict[str, ConnectorSpec] = {}
        self.secrets: dict[str, Secret] = {}
        self.sinks: dict[str, Sink] = {}
        self.resources: dict[str, Resource] = {}  # by ``kind:name``
        self._by_source: dict[str, set[str]] = defaultdict(set)
        self._subscribers: dict[str, tuple[Subscription, ...]] = {}  # sorted, per source
        self._listeners: list[Listener] = []

    def on_change(self, listener: Listener) -> None:
        """``listener(kind, ident, record)`` after each change; ``record`` is None when
        ``kind/ident`` was deleted."""
        self._listeners.append(listener)

    def apply(self, key: bytes, value: bytes | None) -> None:
        kind, _, ident = key.decode().partition("/")
        cls = _KINDS.get(kind)
        if cls is None or not ident:
            log.warning("ignoring registry record with unknown key %r", key)
            return
        record: Record | None = None
        if value is not None:
            fields: dict[str, Any] = strict_loads(value)
            record = cls.from_dict(fields)
        self._store(kind, ident, record)
        for listener in self._listeners:
            listener(kind, ident, record)

    def _store(self, kind: str, ident: str, record: Record | None) -> None:
        table: dict[str, Any] = getattr(self, f"{kind}s")
        old = table.pop(ident, None)
        if isinstance(old, Subscription):
            self._by_source[old.source].discard(ident)
            self._subscribers.pop(old.source, None)
        if record is None:
            return
        table[ident] = record
        if isinstance(record, Subscription):
            self._by_source[record.source].add(ident)
            self._subscribers.pop(record.source, None)

    def function(self, name: str) -> FunctionSpec:
        try:
            return self.functions[name]
        except KeyError:
            raise NotFound(f"function {name!r} does not exist") from None

    def webhook(self, ident: str) -> Webhook:
        try:
            return self.webhooks[ident]
        except KeyError:
            raise NotFound(f"webhook {ident!r} does not exist") from None

    def subscription(self, ident: str) -> Subscription:
        try:
            return self.subscriptions[ident]
        except KeyError:
            raise NotFound(f"subscription {ident!r} does not exist") from None

    def connector(self, name: str) -> ConnectorSpec:
        try:
            return self.connectors[name]
        except KeyError:
            raise NotFound(f"connector {name!r} does not exist") from None

    def secret(self, name: str) -> Secret:
        try:
            return self.secrets[name]
        except KeyError:
            raise NotFound(f"secret {name!r} does not exist") from None

    def sink(self, ident: str) -> Sink:
        try:
            return self.sinks[ident]
        except KeyError:
            raise NotFound(f"sink {ident!r} does not exist") from None

    def resource(self, kind: str, name: str) -> Resource:
        try:
            return self.resources[f"{kind}:{name}"]
        except KeyError:
            raise NotFound(f"{kind} {name!r} does not exist") from None

    def resources_of(self, kind: str) -> list[Resource]:
        """Every resource of ``kind``, by name."""
        return sorted((r for r in self.resources.values() if r.kind == kind),
                      key=lambda r: r.name)

    def has_sinks(self, function: str) -> bool:
        return any(s.function == function for s in self.sinks.values())

    def subscribers(self, source: str) -> tuple[Subscription, ...]:
        """The subscriptions of a source, in a stable order (sorted once per change: the
        starter asks twice for every event)."""
        found = self._subscribers.get(source)
        if found is None:
            found = self._subscribers[source] = tuple(sorted(
                (self.subscriptions[i] for i in self._by_source.get(source, ())),
                key=lambda s: (s.function, s.id)))
        return found

    def sources(self) -> set[str]:
        """Every source a webhook or connector publishes to or a subscription listens on."""
        subscribed = {s for s, ids in self._by_source.items() if ids}
        published = {w.source for w in self.webhooks.values()}
        return subscribed | published | {c.source for c in self.connectors.values()}
