"""The ingest baseline: a FastAPI endpoint that reads the body and answers, served by
uvicorn with the gateway's settings, so the ratio isolates what faasflow adds (routing,
the registry lookup, the CloudEvent, the Kafka round trip)."""

from __future__ import annotations

from fastapi import FastAPI, Request

app = FastAPI()


@app.post("/noop", status_code=202)
async def noop(request: Request) -> dict[str, str]:
    await request.body()
    return {"event_id": "0"}
