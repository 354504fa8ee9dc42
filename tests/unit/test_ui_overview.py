"""The overview's event stream: each sample as a chart frame and a tables frame, heartbeats
while nothing comes, and the follower given up when the client goes away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from pipeline.gateway.ui.overview import frame, stream, tables
from pipeline.observability.pulse import FunctionPulse, Sample, SourcePulse

SAMPLE = Sample(1000.0, {"orders": SourcePulse(2.5, 7)},
                {"resize": FunctionPulse(2.0, 0.5, 0.25, 0.012, None)})


class Samples:
    """Samples the test hands over, as ``Pulse.follow`` gives them; it tells whether its
    follower ended."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Sample] = asyncio.Queue()
        self.followers = 0
        self.closed = 0

    async def follow(self) -> AsyncIterator[Sample]:
        self.followers += 1
        try:
            while True:
                yield await self.queue.get()
        finally:
            self.closed += 1


class Client:
    def __init__(self) -> None:
        self.gone = False

    async def is_disconnected(self) -> bool:
        return self.gone


def test_a_frame_puts_every_line_after_data() -> None:
    assert frame("tables", "<p>\nhi</p>") == "event: tables\ndata: <p>\ndata: hi</p>\n\n"
    assert frame("sample", "") == "event: sample\ndata: \n\n"


def test_the_tables_show_the_current_numbers() -> None:
    html = tables(SAMPLE)
    assert 'data-source="orders"' in html
    assert "2.50" in html
    assert ">7<" in html
    assert 'data-function="resize"' in html
    assert "25.0 %" in html
    assert "12 ms" in html
    assert "No sample yet" in tables(None)


async def test_each_sample_is_a_chart_frame_then_a_tables_frame() -> None:
    pulse, client = Samples(), Client()
    frames = stream(pulse.follow, client, heartbeat_s=5)
    assert await anext(frames) == ": following\n\n"
    await pulse.queue.put(SAMPLE)
    chart = await asyncio.wait_for(anext(frames), 2)
    assert chart.startswith("event: sample\ndata: {")
    assert '"orders"' in chart
    assert (await anext(frames)).startswith("event: tables\n")
    await frames.aclose()
    assert pulse.closed == 1


async def test_a_heartbeat_while_nothing_comes_then_the_end_once_the_client_is_gone() -> None:
    pulse, client = Samples(), Client()
    frames = stream(pulse.follow, client, heartbeat_s=0.01)
    await anext(frames)
    assert await asyncio.wait_for(anext(frames), 2) == ": heartbeat\n\n"
    client.gone = True
    rest = [f async for f in frames]  # ends by itself: no sample needed
    assert rest == []
    assert (pulse.followers, pulse.closed) == (1, 1)


async def test_the_stream_ends_when_the_pulse_stops() -> None:
    assert [f async for f in stream(stopped, Client(), heartbeat_s=5)] == [": following\n\n"]


async def stopped() -> AsyncIterator[Sample]:
    return
    yield


async def test_a_stream_cancelled_mid_wait_gives_up_its_follower() -> None:
    """As Starlette does when it sees the disconnect first."""
    pulse, client = Samples(), Client()
    frames = stream(pulse.follow, client, heartbeat_s=5)
    await anext(frames)
    reading = asyncio.ensure_future(anext(frames))
    await asyncio.sleep(0.05)
    reading.cancel()
    await asyncio.gather(reading, return_exceptions=True)
    await frames.aclose()
    assert pulse.closed == 1
