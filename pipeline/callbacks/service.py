"""Callbacks wired to Kafka: the worker's dispatcher with its views, and the gateway's view
of the targets' breakers (listed, and resumed by hand)."""

from __future__ import annotations

from typing import Any

from pipeline.callbacks.breaker import Breaker, TargetState
from pipeline.callbacks.dispatcher import Dispatcher
from pipeline.callbacks.records import Delivery, Ledger
from pipeline.callbacks.sender import HttpSender
from pipeline.callbacks.signing import platform_secret
from pipeline.errors import NotFound
from pipeline.kafka import CompactedView, Publisher, TailView
from pipeline.kafka.views import READ_YOUR_WRITES_S
from pipeline.registry import Registry
from pipeline.settings import Settings
from pipeline.topics import Topics


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


class LedgerView(TailView):
    """The callbacks topic from the ledger's horizon on, values and all."""

    def __init__(self, settings: Settings, topics: Topics, ledger: Ledger) -> None:
        super().__init__(settings.kafka, topics.callbacks, lambda key, headers, at: None,
                         since_s=ledger.horizon_s)
        self._ledger = ledger

    def _apply_message(self, message: Any) -> None:
        self._ledger.apply(message.key, message.value, message.headers or (),
                           message.timestamp / 1000)


def breaker_of(settings: Settings) -> Breaker:
    config = settings.callbacks
    return Breaker(config.breaker_failures, config.breaker_cooldown_s)


class WorkerCallbacks:
    """What a worker runs to deliver callbacks: the dispatcher, the ledger of deliveries
    (since the oldest a delivery may be, and the worker's dedupe horizon before that) and
    the targets' breakers."""

    def __init__(self, settings: Settings, topics: Topics, registry: Registry,
                 publisher: Publisher) -> None:
        config = settings.callbacks
        kafka = settings.kafka
        ledger = Ledger(config.max_age_s + settings.worker.dedupe_horizon_s)
        breaker = breaker_of(settings)
        self._ledger_view = LedgerView(settings, topics, ledger)
        self._targets_view = CompactedView(kafka, topics.callback_targets, breaker.apply)
        self.views: list[CompactedView] = [self._ledger_view, self._targets_view]
        self._sender = HttpSender(config.allow_private, config.timeout_s)
        self.dispatcher = Dispatcher(
            config, platform_secret(settings), lambda: registry.sinks.values(), ledger,
            self._ledger_view.sync, breaker, self._sender, KafkaJournal(publisher, topics))

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
                                   READ_YOUR_WRITES_S)
        return resumed
