from __future__ import annotations

from typing import Any

from fastapi import Request

from connectors import cloudevents
from pipeline.gateway.answers import EventAccepted, error, errors, links
from pipeline.gateway.deps import Control, Name, management

router = management("/v1/sources", "ingest")

CLOUD_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["specversion", "id", "source", "type"],
    "properties": {
        "specversion": {"type": "string", "enum": ["1.0"]},
        "id": {"type": "string", "minLength": 1},
        "source": {"type": "string", "minLength": 1},
        "type": {"type": "string", "minLength": 1},
        "subject": {"type": "string"},
        "time": {"type": "string"},
        "datacontenttype": {"type": "string"},
        "data": {},
        "data_base64": {"type": "string", "format": "byte"},
    },
}
BINARY_HEADERS = [
    {"name": f"ce-{name}", "in": "header", "required": False, "schema": {"type": "string"},
     "description": f"binary mode: the event's {name}"}
    for name in ("specversion", "id", "source", "type")
]


@router.post(
    "/{source}/events", status_code=202, summary="Publish a CloudEvent to a source",
    response_model=EventAccepted,
    responses={202: links("event_id", "$response.body#/event_id", "list_invocations"),
               404: error("No webhook, connector or subscription declares the source."),
               **errors(413, 422, 503)},
    openapi_extra={
        "parameters": BINARY_HEADERS,
        "requestBody": {"required": True, "content": {
            cloudevents.STRUCTURED_TYPE: {"schema": CLOUD_EVENT},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        }},
    },
)
async def ingest(source: Name, request: Request, control: Control) -> dict[str, str]:
    """Structured (``application/cloudevents+json``) or binary (``ce-*`` headers, the body
    is the data, of any content type) mode; answers once Kafka acknowledged the event."""
    event = cloudevents.parse(request.headers, await request.body())
    return {"event_id": await control.ingest(source, event)}
