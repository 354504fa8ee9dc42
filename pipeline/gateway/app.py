"""``create_app(settings)``: the gateway's FastAPI application.

The lifespan builds the adapters (Kafka publisher, registry and results views, the
function runtimes) and keeps them on ``app.state``; routes only translate HTTP.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from pipeline import __version__, collector
from pipeline.callbacks.service import GatewayTargets
from pipeline.connector_states import ConnectorStates
from pipeline.control import ControlPlane
from pipeline.gateway import errors, ui
from pipeline.gateway.answers import operation_id
from pipeline.gateway.auth import ManagementAuth
from pipeline.gateway.compat import fn, openfaas, openwhisk
from pipeline.gateway.limits import BodyLimit
from pipeline.gateway.metrics import GatewayMetrics, MetricsMiddleware
from pipeline.gateway.routes import (
    asynchronous,
    callbacks,
    connectors,
    deadletters,
    events,
    functions,
    hooks,
    index,
    invocations,
    invoke,
    metrics,
    replays,
    secrets,
    sinks,
    sources,
    subscriptions,
    system,
    webhooks,
)
from pipeline.index import ResultsIndex
from pipeline.kafka import CompactedView, Publisher, ensure_topics, wait_for_broker
from pipeline.observability.service import observe
from pipeline.receiver import Deliveries, WebhookReceiver
from pipeline.registry import Registry
from pipeline.replays.records import Replays
from pipeline.replays.service import ReplayService
from pipeline.runtime.runtimes import Runtimes
from pipeline.settings import Settings
from pipeline.topics import Topics

log = logging.getLogger(__name__)

BROKER_WAIT_S = 60.0


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        kafka = settings.kafka
        topics = Topics(kafka)
        await wait_for_broker(kafka, BROKER_WAIT_S)
        await ensure_topics(kafka, topics.core())
        async with AsyncExitStack() as stack:
            publisher = Publisher(kafka)
            await publisher.start()
            stack.push_async_callback(publisher.stop)
            registry = Registry()
            deliveries = Deliveries(kafka.delivery_retention_ms / 1000)
            registry_view = CompactedView(kafka, topics.registry, registry.apply)
            deliveries_view = CompactedView(kafka, topics.deliveries, deliveries.apply)
            connector_states = ConnectorStates()
            states_view = CompactedView(kafka, topics.connectors, connector_states.apply)
            checkpoints_view = CompactedView(kafka, topics.checkpoints,
                                             connector_states.checkpoints.apply)
            app.state.callback_targets = targets = GatewayTargets(settings, topics, publisher)
            views = [registry_view, deliveries_view, states_view, checkpoints_view, targets.view]
            for view in views:
                await view.start()
                stack.push_async_callback(view.stop)
            results = ResultsIndex(settings)
            await results.start()
            stack.push_async_callback(results.stop)
            app.state.views = [*views, *results.views]
            runtimes = Runtimes(settings, sharers=settings.gateway.process_count())
            await runtimes.start(registry)
            stack.push_async_callback(runtimes.close)
            app.state.runtimes = runtimes  # (the dashboard shows this process's warm pools)
            app.state.control = control = ControlPlane(
                settings, publisher, registry, registry_view, results, runtimes, connector_states)
            stack.push_async_callback(control.close)
            replay_log = Replays()
            replays_view = CompactedView(kafka, topics.replays, replay_log.apply)
            await replays_view.start()
            stack.push_async_callback(replays_view.stop)
            app.state.views.append(replays_view)
            app.state.replays = ReplayService(kafka, topics, publisher, registry, replay_log,
                                              replays_view, results)
            app.state.receiver = WebhookReceiver(
                topics, publisher, registry, deliveries, settings.budget,
                registry_position=lambda: registry_view.position(0))
            app.state.pulse = await observe(stack, settings, app.state.metrics.registry, results,
                                            runtimes.warm, replay_log)  # /metrics, dashboard
            log.info("gateway ready: %d functions, %d webhooks, %d subscriptions",
                     len(registry.functions), len(registry.webhooks), len(registry.subscriptions))
            collector.settle()
            yield

    app = FastAPI(
        title="faasflow",
        version=__version__,
        summary="Serverless functions on your own Docker machines, driven by Kafka.",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        docs_url=None,  # ui.docs serves /docs with the gateway's own copy of Swagger UI
        redoc_url=None,
    )
    app.state.token = settings.auth_token(create=True)
    app.state.metrics = GatewayMetrics()
    errors.install(app)
    # the hot paths first: a request is matched against the routes in this order
    for module in (hooks, invoke, functions, webhooks, subscriptions, connectors, secrets,
                   invocations, deadletters, sources, system, asynchronous, sinks, callbacks,
                   events, index, replays):
        app.include_router(module.router)
    app.include_router(openwhisk.router)  # Apache OpenWhisk's /api/v1/namespaces/ API
    app.include_router(openfaas.router)  # OpenFaaS's /system/ API (its invoke routes above)
    app.include_router(fn.router)  # the Fn Project's /v2/ and /v1/apps APIs, /invoke, /t, /r
    app.include_router(metrics.router(public=settings.metrics.public))  # credentials, or not
    ui.install(app)  # the dashboard (/ui) and the API's page (/docs)
    app.add_middleware(BodyLimit, limit=settings.max_payload_bytes)
    app.add_middleware(ManagementAuth, token=app.state.token,  # outside BodyLimit: 401 first
                       metrics_public=settings.metrics.public)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app
