"""The control plane: what the gateway does, without HTTP.

Writes go to the registry topic and return once this process's own view has applied
them, so a client that reads right after it writes sees its write. Event ingest returns
only after Kafka acknowledged the event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from connectors import catalog
from connectors.webhooks import rotation
from pipeline.batches.policy import Batching
from pipeline.callbacks.guard import check_url
from pipeline.calls import HttpCall
from pipeline.connector_states import ConnectorStates
from pipeline.delivery_log import Delivery, DeliveryLog
from pipeline.errors import Conflict, InvalidRequest, NotFound
from pipeline.execution import execute, pending
from pipeline.filters import Filter
from pipeline.ids import invocation_id, new_event_id, new_resource_id
from pipeline.index import ResultsIndex
from pipeline.kafka import CompactedView, Publisher, ensure_topics
from pipeline.records import Event, Invocation, Result, Status, utc_now
from pipeline.redrive import DeadLetterLog
from pipeline.registry import Record, Registry, encode, record_key, stamp, stamp_invocation
from pipeline.runtime.base import Runner
from pipeline.runtime.warm import RUNTIME_IMAGES
from pipeline.settings import Settings
from pipeline.specs import (
    ConnectorSpec,
    Contract,
    FunctionSpec,
    Mode,
    Resource,
    Secret,
    Sink,
    Subscription,
    Webhook,
)
from pipeline.topics import Topics, check_source
from pipeline.writer import Writer

T = TypeVar("T")

log = logging.getLogger(__name__)

INVOKE_EVENT_TYPE = "dev.faasflow.function.invoked"
INVOKE_SOURCE = "invoke"


def invocation_of(name: str, body: bytes, content_type: str | None,
                  call: HttpCall | None = None) -> Invocation:
    """An invocation of ``name`` called directly (not by an event of a source), by ``call``
    when it was an HTTP request."""
    event = Event(id=new_event_id(), source=INVOKE_SOURCE, type=INVOKE_EVENT_TYPE, data=body,
                  datacontenttype=content_type, subject=name,
                  extensions=call.extension() if call else {})
    return Invocation(id=invocation_id(INVOKE_SOURCE, event, name), function=name, event=event,
                      source=INVOKE_SOURCE)


class ControlPlane:
    def __init__(
        self,
        settings: Settings,
        publisher: Publisher,
        registry: Registry,
        registry_view: CompactedView,
        results: ResultsIndex,
        runner: Runner,
        connector_states: ConnectorStates,
    ) -> None:
        self.settings = settings
        self.topics = Topics(settings.kafka)
        self.registry = registry
        self.results = results
        self._publisher = publisher
        self._registry_view = registry_view
        self._runner = runner
        self._writer = Writer(publisher, self.topics)
        self.dead_letters = DeadLetterLog(settings.kafka, self.topics, self._writer,
                                          registry_position=lambda: registry_view.position(0))
        self._connector_states = connector_states
        self._delivery_log = DeliveryLog(settings.kafka, self.topics)

    async def found(self, lookup: Callable[[str], T], key: str) -> T:
        """``lookup(key)`` (one of the registry's getters); when it is not found, once more
        after reading the registry up to its end. A write made through another gateway a
        moment ago is then seen here (read-your-writes across gateways), and a name that
        is found, the common case, costs nothing more."""
        try:
            return lookup(key)
        except NotFound:
            await self._registry_view.sync()
            return lookup(key)

    # registry writes

    async def _write(self, key: str, record: Record | None) -> None:
        written = await self._publisher.publish(
            self.topics.registry, key, None if record is None else encode(record)
        )
        if not await self._registry_view.applied(written):
            log.warning("registry write %s@%d not yet applied locally", key, written.offset)

    async def put_function(self, draft: FunctionSpec) -> FunctionSpec:
        """Deploy ``draft`` (its digest and timestamps are filled in here) from a local
        image, or from code: a code function runs warm in its language's runtime image,
        with no build."""
        check_source(draft.name)  # function names share the source character set
        if draft.timeout_s > self.settings.runtime.max_timeout_s:
            raise InvalidRequest(
                f"timeout_s may be at most {self.settings.runtime.max_timeout_s:g}")
        if (draft.code is None) != (draft.runtime is None):
            raise InvalidRequest("a code function needs both runtime and code")
        if bool(draft.image) == (draft.code is not None):
            raise InvalidRequest("give either an image, or a runtime and code")
        if draft.code is not None and draft.mode is not Mode.WARM:
            raise InvalidRequest("code functions run warm: use mode 'warm'")
        if draft.contract is Contract.FN and (draft.code or draft.mode is not Mode.WARM):
            raise InvalidRequest("an Fn FDK image (contract 'fn') runs warm, from an image: "
                                 "use mode 'warm'")
        if draft.command is not None and (draft.code is not None or not draft.command):
            raise InvalidRequest("a command replaces an image's own: give it with an image, "
                                 "and not empty")
        for secret in draft.secrets.values():
            if secret not in self.registry.secrets:
                raise InvalidRequest(f"secret {secret!r} does not exist: create it first")
        image = draft.image or RUNTIME_IMAGES[draft.runtime]  # type: ignore[index]
        now = utc_now()
        old = self.registry.functions.get(draft.name)
        spec = replace(draft, image=image, image_digest=await self._runner.resolve_image(image),
                       created_at=old.created_at if old else now, updated_at=now)
        await self._write(record_key(spec), spec)
        return spec

    async def image_env(self, image: str) -> dict[str, str]:
        """The environment variables a local image sets (``InvalidRequest`` when there is
        no such image)."""
        return await self._runner.image_env(image)

    async def put_secret(self, name: str, value: str) -> tuple[Secret, bool]:
        """Create or replace a secret; warm containers of functions using it restart."""
        check_source(name)
        old = self.registry.secrets.get(name)
        now = utc_now()
        secret = Secret(name=name, value=value, created_at=old.created_at if old else now,
                        updated_at=now)
        await self._write(record_key(secret), secret)
        return secret, old is None

    async def delete_secret(self, name: str) -> None:
        await self.found(self.registry.secret, name)
        users = sorted(f.name for f in self.registry.functions.values()
                       if name in f.secrets.values())
        if users:
            raise Conflict(f"secret {name!r} is used by {', '.join(users)}")
        await self._write(f"secret/{name}", None)

    async def put_resource(self, kind: str, name: str, doc: Mapping[str, Any]) -> Resource:
        """Create or replace another API's object (``Resource``)."""
        old = self.registry.resources.get(f"{kind}:{name}")
        now = utc_now()
        resource = Resource(kind=kind, name=name, doc=dict(doc),
                            created_at=old.created_at if old else now, updated_at=now)
        await self._write(record_key(resource), resource)
        return resource

    async def delete_resource(self, kind: str, name: str) -> None:
        resource = await self.found(lambda key: self.registry.resource(kind, key), name)
        await self._write(record_key(resource), None)

    async def delete_function(self, name: str) -> None:
        """Delete a function, its subscriptions and sinks; invocations still queued for it
        fail."""
        spec = await self.found(self.registry.function, name)
        for subscription in list(self.registry.subscriptions.values()):
            if subscription.function == name:
                await self._write(record_key(subscription), None)
        for sink in list(self.registry.sinks.values()):
            if sink.function == name:
                await self._write(record_key(sink), None)
        await self._write(record_key(spec), None)

    async def create_webhook(self, name: str, source: str, scheme: str = "none",
                             secret: str | None = None,
                             delivery_header: str | None = None) -> Webhook:
        """A new webhook; a signed scheme without ``secret`` gets a generated one."""
        hook = rotation.configure(Webhook(id=new_resource_id("wh"), name=name, source=source),
                                  scheme, secret, delivery_header)
        await ensure_topics(self.settings.kafka, [self.topics.event_topic(check_source(source))])
        await self._write(record_key(hook), hook)
        return hook

    async def rotate_webhook_secret(self, ident: str, secret: str | None = None,
                                    grace_s: float | None = None) -> Webhook:
        """A new current secret (generated unless given); the replaced ones keep verifying
        for ``grace_s`` (by default the configured grace period)."""
        grace = self.settings.gateway.webhook_rotation_grace_s if grace_s is None else grace_s
        hook = rotation.rotate(await self.found(self.registry.webhook, ident), secret,
                               time.time(), grace)
        await self._write(record_key(hook), hook)
        log.info("webhook %s: secret rotated, %d secrets valid", ident, len(hook.secrets))
        return hook

    async def delete_webhook(self, ident: str) -> None:
        await self._write(record_key(await self.found(self.registry.webhook, ident)), None)

    async def webhook_deliveries(self, idents: Iterable[str],
                                 limit: int) -> dict[str, list[Delivery]]:
        """Each webhook's last ``limit`` accepted deliveries, newest first, read from its
        source's topic (``pipeline.delivery_log``: a bounded window of it); ``NotFound``
        for a webhook that does not exist."""
        hooks = [await self.found(self.registry.webhook, ident) for ident in idents]
        return await self._delivery_log.last(hooks, limit)

    async def subscribe(self, function: str, source: str, event_filter: Filter | None = None,
                        batching: Batching | None = None) -> tuple[Subscription, bool]:
        """The subscription of ``function`` to ``source`` with ``event_filter`` and
        ``batching``, and whether it is new: subscribing twice with the same filter and
        batching is harmless and returns the first subscription; another filter makes
        another subscription (an event runs the function once if it matches either)."""
        batching = batching or Batching()
        await self.found(self.registry.function, function)
        for existing in self.registry.subscribers(check_source(source)):
            if (existing.function, existing.filter, existing.batching) == (function,
                                                                          event_filter,
                                                                          batching):
                return existing, False
        await ensure_topics(self.settings.kafka, [self.topics.event_topic(check_source(source))])
        subscription = Subscription(id=new_resource_id("sub"), function=function, source=source,
                                    filter=event_filter, batching=batching)
        await self._write(record_key(subscription), subscription)
        return subscription, True

    async def unsubscribe(self, ident: str) -> None:
        await self._write(record_key(await self.found(self.registry.subscription, ident)), None)

    # events and invocations

    async def publish(self, event: Event, source: str | None = None) -> str:
        """Publish to ``source``'s topic (by default the event's own source attribute)."""
        source = source or event.source
        event = stamp(event, self._registry_view.position(0))
        await self._publisher.publish(self.topics.events(source), event.id,
                                      self.settings.budget.encode_event(event))
        log.info("event %s published to source %s", event.id, source)
        return event.id

    async def ingest(self, source: str, event: Event) -> str:
        """A CloudEvent from any producer, onto a source that a webhook, connector or
        subscription declared."""
        if check_source(source) not in self.registry.sources():
            raise NotFound(f"source {source!r} has no webhook, connector or subscription")
        return await self.publish(event, source)

    async def put_connector(self, name: str, kind: str, source: str,
                            config: Mapping[str, Any]) -> tuple[ConnectorSpec, bool]:
        """Create a connector; the same definition again is a no-op, another is a conflict."""
        check_source(name)
        spec = ConnectorSpec(name=name, kind=kind, source=check_source(source),
                             config=catalog.validate(kind, config))
        old = self.registry.connectors.get(name)
        if old is not None:
            if (old.kind, old.source, old.config) == (spec.kind, spec.source, spec.config):
                return old, False
            raise Conflict(f"connector {name!r} exists with another definition; delete it first")
        await ensure_topics(self.settings.kafka, [self.topics.event_topic(source)])
        await self._write(record_key(spec), spec)
        return spec, True

    async def connector(self, name: str) -> dict[str, Any]:
        """The connector's definition and its state, as its worker last reported it."""
        return self._connector_states.describe(await self.found(self.registry.connector, name))

    def connectors(self) -> list[dict[str, Any]]:
        return [self._connector_states.describe(spec)
                for spec in sorted(self.registry.connectors.values(), key=lambda c: c.name)]

    async def delete_connector(self, name: str) -> None:
        await self._write(record_key(await self.found(self.registry.connector, name)), None)

    async def invoke(self, name: str, body: bytes, content_type: str | None,
                     call: HttpCall | None = None) -> Result:
        """Run a function now, in this process, and log its Result like any other."""
        function = await self.found(self.registry.function, name)
        invocation = invocation_of(name, body, content_type, call)
        result = await execute(invocation, function, self._runner)
        self.results.remember(result)  # readable here at once
        # The caller is answered without waiting for Kafka's ack (a sync call's latency is
        # the function's, as OpenFaaS users expect); close() waits for what is in flight.
        self._writer.note(result)
        return result

    async def invoke_async(self, name: str, body: bytes, content_type: str | None,
                           callback_url: str = "", call: HttpCall | None = None) -> Invocation:
        """Queue a run for the workers; returns once Kafka acknowledged its pending Result
        and the invocation (a broker that is down is ``BrokerUnavailable``, up front)."""
        await self.found(self.registry.function, name)
        if callback_url:
            await check_url(callback_url, self.settings.callbacks.allow_private)
        invocation = stamp_invocation(
            replace(invocation_of(name, body, content_type, call), callback_url=callback_url),
            self._registry_view.position(0))
        await asyncio.gather(self._writer.write(pending(invocation)),
                             self._writer.enqueue(invocation))
        log.info("invocation %s of %s queued", invocation.id, name)
        return invocation

    async def add_sink(self, function: str, url: str) -> Sink:
        """Deliver every final Result of ``function`` to ``url`` from now on."""
        await self.found(self.registry.function, function)
        sink = Sink(id=new_resource_id("sink"), function=function,
                    url=await check_url(url, self.settings.callbacks.allow_private))
        await self._write(record_key(sink), sink)
        return sink

    async def delete_sink(self, ident: str) -> None:
        await self._write(record_key(await self.found(self.registry.sink, ident)), None)

    async def close(self) -> None:
        """Wait for the Results still being logged."""
        await self._writer.close()

    async def results_for_event(self, event_id: str, wait_s: float = 0.0) -> list[Result]:
        """The event's Results; with ``wait_s``, wait that long for at least one, all final."""

        def settled() -> bool:
            found = self.results.rows_for_event(event_id)
            return bool(found) and all(Status(r.status).final for r in found)

        if wait_s > 0 and not settled():
            await self.results.wait_until(settled, wait_s)
        return await self.results.results(self.results.rows_for_event(event_id))

    async def result(self, ident: str) -> Result:
        return await self.results.get(ident)

