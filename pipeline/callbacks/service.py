"""Callbacks wired to Kafka: the worker's dispatcher with its views, and the gateway's view
of the targets' breakers (listed, and resumed by hand)."""

from __future__ import annotations

from pipeline.callbacks.breaker import Breaker, TargetState
from pipeline.callbacks.dispatcher import Dispatcher
from pipeline.callbacks.records import Delivery, Settled
from pipeline.callbacks.sender import HttpSender
from pipeline.callbacks.signing import platform_secret
from pipeline.errors import NotFound
from pipeline.kafka import CompactedView, Publisher, TailView
from pipeline.registry import Registry
from pipeline.settings import Settings
from pipeline.topics import Topics

READ_YOUR_WRITES_TIMEOUT_S = 10.0


class KafkaJournal:
    """Delivery records to ``topics.callbacks``, breaker states to ``topics.callback_targets``."""

    def __init__(self, publisher: Publisher, topics: Topics) -> None:
        self._publisher = publisher
        self._topics = topics

    async def delivery(self, delivery: Delivery) -> None:
        await self._publisher.publish(self._topics.callbacks, delivery.key, delivery.encode(),
                                      delivery.headers())

    async def target(self, state: TargetState) -> None:
        await self._publisher.publish(self._topics.callback_targets, state.origin,
                                      state.encode())


def breaker_of(settings: Settings) -> Breaker:
    config = settings.callbacks
    return Breaker(config.breaker_failures, config.breaker_cooldown_s)


class WorkerCallbacks:
    """What a worker runs to deliver callbacks: the dispatcher, the settled deliveries
    (since the oldest a delivery may be, and the worker's dedupe horizon before that) and
    the targets' breakers."""

    def __init__(self, settings: Settings, topics: Topics, registry: Registry,
                 publisher: Publisher) -> None:
        config = settings.callbacks
        kafka = settings.kafka
        settled = Settled(config.max_age_s + settings.worker.dedupe_horizon_s)
        breaker = breaker_of(settings)
        self._settled_view = TailView(kafka, topics.callbacks, settled.apply,
                                      since_s=settled.horizon_s)
        self._targets_view = CompactedView(kafka, topics.callback_targets, breaker.apply)
        self.views: list[CompactedView] = [self._settled_view, self._targets_view]
        self._sender = HttpSender(config.allow_private, config.timeout_s)
        self.dispatcher = Dispatcher(
            config, platform_secret(settings), lambda: registry.sinks.values(), settled,
            self._settled_view.sync, breaker, self._sender, KafkaJournal(publisher, topics))

    async def start(self) -> list[CompactedView]:
        """Start the views; the caller stops them (and reports their health)."""
        for view in self.views:
            await view.start()
        return self.views

    async def stop(self) -> None:
        await self.dispatcher.close()
        await self._sender.close()


class GatewayTargets:
    """The gateway's view of the breakers: ``GET /v1/callbacks/targets`` and resume."""

    def __init__(self, settings: Settings, topics: Topics, publisher: Publisher) -> None:
        self.breaker = breaker_of(settings)
        self.view = CompactedView(settings.kafka, topics.callback_targets, self.breaker.apply)
        self._journal = KafkaJournal(publisher, topics)

    def list(self) -> list[TargetState]:
        return sorted(self.breaker.states.values(), key=lambda s: s.origin)

    def get(self, ident: str) -> TargetState:
        for state in self.breaker.states.values():
            if state.id == ident:
                return state
        raise NotFound(f"callback target {ident!r} is not known (no delivery failed there)")

    async def resume(self, ident: str) -> TargetState:
        """Close the target's breaker: its waiting deliveries go on within a second."""
        resumed = Breaker.resumed(self.get(ident).origin)
        await self._journal.target(resumed)
        await self.view.wait_until(lambda: self.breaker.state(resumed.origin) == resumed,
                                   READ_YOUR_WRITES_TIMEOUT_S)
        return resumed
