from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pipeline import __version__
from pipeline.gateway.answers import Health
from pipeline.gateway.deps import Control

router = APIRouter(tags=["system"])


@router.get("/healthz", summary="Liveness and the state this gateway has loaded",
            response_model=Health)
async def healthz(control: Control) -> dict[str, object]:
    return {
        "status": "ok",
        "version": __version__,
        "functions": len(control.registry.functions),
        "webhooks": len(control.registry.webhooks),
        "subscriptions": len(control.registry.subscriptions),
    }


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry),
                    media_type=CONTENT_TYPE_LATEST)
