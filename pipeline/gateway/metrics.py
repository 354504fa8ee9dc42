"""Prometheus metrics of one gateway process, in a registry of its own (nothing at import
time); the lifespan registers the cluster-wide ones there too (``pipeline.observability``).

Requests are counted by route template, so webhook ingest is
``faasflow_http_requests_total{route="/hooks/{ident}"}`` by status (202: published)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "faasflow_http_requests_total", "HTTP requests answered",
            ["method", "route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "faasflow_http_request_duration_seconds", "HTTP request latency",
            ["route"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.events = Counter(
            "faasflow_events_published_total", "Events acknowledged by Kafka",
            ["source"], registry=self.registry,
        )
        self.connections_closed = Counter(
            "faasflow_http_connections_closed_total",
            "Connections closed on a client that did not keep up (see gateway.connections)",
            ["reason"], registry=self.registry,
        )
        self.invocations = Counter(
            "faasflow_sync_invocations_total", "Synchronous invocations by outcome",
            ["function", "status"], registry=self.registry,
        )


class MetricsMiddleware:
    """Counts and times every request by route template (``/function/{name}``)."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        t0 = time.perf_counter()

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - t0)
