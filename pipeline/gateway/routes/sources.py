from __future__ import annotations

from fastapi import APIRouter, Request

from connectors import cloudevents
from pipeline.gateway.deps import Authenticated, Control

router = APIRouter(prefix="/v1/sources", tags=["ingest"], dependencies=Authenticated)


@router.post("/{source}/events", status_code=202, summary="Publish a CloudEvent to a source")
async def ingest(source: str, request: Request, control: Control) -> dict[str, str]:
    """Structured (``application/cloudevents+json``) or binary (``ce-*`` headers) mode;
    answers once Kafka acknowledged the event."""
    event = cloudevents.parse(request.headers, await request.body())
    return {"event_id": await control.ingest(source, event)}
