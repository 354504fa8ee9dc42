from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from pipeline import __version__
from pipeline.gateway.answers import Health, error
from pipeline.gateway.deps import Control
from pipeline.gateway.errors import error_body

router = APIRouter(tags=["system"])


@router.get("/healthz", summary="Readiness and the state this gateway has loaded",
            response_model=Health, responses={503: error(
                "Not ready: a Kafka view this gateway answers from is failing "
                "(`error.problems` says which).")})
async def healthz(request: Request, control: Control) -> Any:
    """503 ``not_ready`` while a Kafka view this gateway answers from is failing (the
    broker is down, say): its answers may be stale, and writes would fail."""
    problems = [p for p in (view.problem() for view in request.app.state.views) if p]
    if problems:
        return JSONResponse(error_body("not_ready", "; ".join(problems), problems=problems),
                            503)
    return {
        "status": "ok",
        "version": __version__,
        "process": os.getpid(),
        "functions": len(control.registry.functions),
        "webhooks": len(control.registry.webhooks),
        "subscriptions": len(control.registry.subscriptions),
    }
