"""``GET /metrics``: Prometheus' text format, this process's own metrics
(``pipeline.gateway.metrics``) and the cluster-wide ones (``pipeline.observability``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pipeline.gateway.answers import errors
from pipeline.gateway.auth import METRICS_PATH
from pipeline.gateway.deps import Authenticated

# (not PlainTextResponse: its media type would be the 401's too, which is JSON)
TEXT = {"description": "Prometheus' text format", "content": {"text/plain": {
    "schema": {"type": "string"}}}}


def router(public: bool) -> APIRouter:
    """The route, declaring in OpenAPI the credentials ``ManagementAuth`` asks for it,
    unless ``public`` (``FAASFLOW_METRICS_PUBLIC``)."""
    guarded: dict[str, Any] = {} if public else {"dependencies": Authenticated,
                                                 "responses": errors(401)}
    routes = APIRouter(tags=["system"], **guarded)

    @routes.get(METRICS_PATH, summary="Prometheus metrics", response_class=Response,
                responses={200: TEXT})
    async def metrics(request: Request) -> Response:
        """Answered from the last reading of the cluster-wide figures (every
        ``FAASFLOW_METRICS_INTERVAL_S``): a scrape reads no Kafka, SQLite or Docker."""
        return Response(generate_latest(request.app.state.metrics.registry),
                        media_type=CONTENT_TYPE_LATEST)

    return routes
