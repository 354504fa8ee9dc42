from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response

from pipeline.gateway.answers import EventAccepted, error, errors, links
from pipeline.gateway.deps import Control, Receiver

router = APIRouter(tags=["ingest"])


@router.post(
    "/hooks/{ident}", status_code=202, summary="Deliver a webhook (any content type)",
    response_model=EventAccepted,
    responses={202: links("event_id", "$response.body#/event_id", "list_invocations"),
               401: error("The delivery did not verify: `error.check` says which check "
                          "failed. Nothing was published."),
               404: error("No webhook by that id."),
               422: error("The delivery id is too long."),
               **errors(413, 503)},
    openapi_extra={"requestBody": {"content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "application/json": {"schema": {}},
    }}},
)
async def receive_webhook(ident: str, request: Request, control: Control,
                          receiver: Receiver) -> Response:
    """Verifies the delivery by the webhook's scheme (401 and nothing published when it
    fails), then answers once Kafka has acknowledged the event (acks=all). A delivery the
    sender names again gets the same answer and is not published twice."""
    # 404 before reading a body for nobody
    hook = await control.found(control.registry.webhook, ident)
    receipt = await receiver.receive(ident, request.headers, await request.body())
    if not receipt.duplicate:
        request.app.state.metrics.events.labels(hook.source).inc()
    # a Response as it is: FastAPI validates and encodes a returned dict (EventAccepted)
    return Response(orjson.dumps({"event_id": receipt.event_id}), 202,
                    media_type="application/json")
