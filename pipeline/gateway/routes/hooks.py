from __future__ import annotations

from fastapi import APIRouter, Request

from pipeline.gateway.deps import Control

router = APIRouter(tags=["ingest"])


@router.post("/hooks/{ident}", status_code=202, summary="Deliver a webhook (any content type)")
async def receive_webhook(ident: str, request: Request, control: Control) -> dict[str, str]:
    """Answers only once Kafka has acknowledged the event (acks=all)."""
    control.registry.webhook(ident)  # 404 before reading a body for nobody
    body = await request.body()
    event_id = await control.receive_webhook(ident, body, request.headers.get("content-type"))
    request.app.state.metrics.events.labels(control.registry.webhook(ident).source).inc()
    return {"event_id": event_id}
