"""The overview: live charts of the pipeline, from the gateway's pulse (``app.state.pulse``).

The page carries the last minutes of samples to draw at once; ``/ui/overview/stream``
then sends each new sample as Server-Sent Events: ``sample`` (its JSON, for the charts)
and ``tables`` (the current numbers as HTML, swapped in by htmx's SSE extension), with a
comment as heartbeat while nothing comes, until the client goes away.

    ┌ page ───────────────┐        ┌ stream ─────────────────────────────┐
    │ history() as JSON   │ ──────►│ follow(): event: sample / tables    │
    │ tables of the last  │        │ ": heartbeat" every HEARTBEAT_S     │
    └─────────────────────┘        └─────────────────────────────────────┘
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Protocol

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from pipeline.gateway.ui.web import SignedIn, page, templates
from pipeline.observability.pulse import Pulse, Sample

router = APIRouter(prefix="/ui", include_in_schema=False)

HEARTBEAT_S = 15.0  # under the idle timeouts of proxies and of browsers' EventSource

Follow = Callable[[], AsyncIterator[Sample]]  # ``Pulse.follow``


class Client(Protocol):
    async def is_disconnected(self) -> bool: ...


def frame(event: str, data: str) -> str:
    """One Server-Sent Event: every line of ``data`` is a ``data:`` line."""
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {event}\n{lines}\n"


def tables(sample: Sample | None) -> str:
    return templates.get_template("overview_tables.html").render(sample=sample)


async def stream(follow: Follow, client: Client,
                 heartbeat_s: float = HEARTBEAT_S) -> AsyncGenerator[str, None]:
    """The frames of each new sample until ``client`` is gone or the pulse stops; the
    follower is given up (its pending read cancelled, closed) however the stream ends."""
    samples = follow()
    pending: asyncio.Future[Sample] | None = None
    try:
        yield ": following\n\n"  # the headers go out now, not at the first sample
        while not await client.is_disconnected():
            pending = pending or asyncio.ensure_future(anext(samples))
            done, _ = await asyncio.wait({pending}, timeout=heartbeat_s)
            if not done:
                yield ": heartbeat\n\n"
                continue
            try:
                sample = pending.result()
            except StopAsyncIteration:  # the pulse stopped: the gateway is shutting down
                return
            finally:
                pending = None
            yield frame("sample", json.dumps(sample.to_dict()))
            yield frame("tables", tables(sample))
    finally:
        if pending is not None:
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
        closing = getattr(samples, "aclose", None)
        if closing is not None:
            await closing()


def pulse_of(request: Request) -> Pulse:
    pulse: Pulse = request.app.state.pulse
    return pulse


def latest(request: Request) -> Sample | None:
    """The newest sample, if the pulse took one yet."""
    history = pulse_of(request).history()
    return history[-1] if history else None


@router.get("/", name="ui_overview")
async def overview(request: Request, _: SignedIn) -> Response:
    pulse = pulse_of(request)
    history = pulse.history()
    return page(request, "overview.html", section="overview", title="Overview",
                history=[s.to_dict() for s in history], interval_s=pulse.interval_s,
                tables=tables(history[-1] if history else None))


@router.get("/overview/stream", name="ui_overview_stream")
async def overview_stream(request: Request, _: SignedIn) -> Response:
    return StreamingResponse(stream(pulse_of(request).follow, request),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
