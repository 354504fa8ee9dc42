from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pipeline import __version__
from pipeline.gateway.deps import Control

router = APIRouter(tags=["system"])


@router.get("/healthz", summary="Readiness and the state this gateway has loaded")
async def healthz(request: Request, control: Control) -> JSONResponse:
    """503 ``not_ready`` while a Kafka view this gateway answers from is failing (the
    broker is down, say): its answers may be stale, and writes would fail."""
    problems = [p for p in (view.problem() for view in request.app.state.views) if p]
    return JSONResponse({
        "status": "not_ready" if problems else "ok",
        "problems": problems,
        "version": __version__,
        "functions": len(control.registry.functions),
        "webhooks": len(control.registry.webhooks),
        "subscriptions": len(control.registry.subscriptions),
    }, 503 if problems else 200)


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry),
                    media_type=CONTENT_TYPE_LATEST)
