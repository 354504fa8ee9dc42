"""The HTTP poller against a real local HTTP server and an in-memory sink: one event per
change, ids that never repeat, resuming after a crash, errors retried or failing it."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterator

import httpx
import pytest

from connectors.http_poll import HttpPoller, PollConfig, UrlRefused, event_id
from tests.documents import Document
from tests.unit.ethereum_support import Crash, MemorySink


@pytest.fixture
def document() -> Iterator[Document]:
    served = Document()
    yield served
    served.close()


def poller(document: Document) -> HttpPoller:
    return HttpPoller("poll", "docs", PollConfig.model_validate(
        {"url": document.url, "interval_s": 0.1}))


async def until_events(sink: MemorySink, count: int, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while len(sink.events) < count:
            sink.committed.clear()
            await sink.committed.wait()


async def until_reported(sink: MemorySink, check: Callable[[], bool],
                         timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            sink.reported.clear()
            if check():
                return
            await sink.reported.wait()


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_content_that_flips_back_is_a_new_event_every_time(document: Document) -> None:
    sink, polling = MemorySink(), poller(document)
    async with httpx.AsyncClient() as client:
        for body in (b"A", b"B", b"A", b"B"):
            document.body = body
            assert await polling.poll_once(client, sink)
            assert not await polling.poll_once(client, sink)  # unchanged: no event

    assert [e.data for e in sink.events] == [b"A", b"B", b"A", b"B"]
    assert len({e.id for e in sink.events}) == 4
    assert [e.extensions["faasflowsequence"] for e in sink.events] == ["1", "2", "3", "4"]
    assert sink.checkpoint is not None
    assert sink.checkpoint["sequence"] == 4


async def test_a_change_published_before_a_crash_is_neither_repeated_nor_reused(
    document: Document,
) -> None:
    sink = MemorySink()
    first = asyncio.create_task(poller(document).run(sink))
    await until_events(sink, 1)
    sink.crash_before_checkpoint = True  # B lands, its checkpoint does not
    document.body = b"B"
    with pytest.raises(Crash):
        await first
    second = asyncio.create_task(poller(document).run(sink))
    await asyncio.sleep(0.3)  # it polls B again: published already, so no event
    assert [e.data for e in sink.events] == [b"version 1", b"B"]
    document.body = b"version 1"
    await until_events(sink, 3)
    document.body = b"B"  # the same change as the second: a new event all the same
    await until_events(sink, 4)
    await stop(second)

    assert [e.data for e in sink.events] == [b"version 1", b"B", b"version 1", b"B"]
    assert len({e.id for e in sink.events}) == 4
    digest = hashlib.sha256(b"B").hexdigest()
    assert sink.events[1].id == event_id("poll", 2, digest)  # what a re-commit would send
    assert sink.events[3].id == event_id("poll", 4, digest)


async def test_errors_are_retried_and_reported_until_the_server_answers(
    document: Document,
) -> None:
    document.status = 503
    sink = MemorySink()
    task = asyncio.create_task(poller(document).run(sink))
    await until_reported(sink, lambda: len(sink.reports) >= 2)
    assert all(isinstance(r, httpx.HTTPStatusError) for r in sink.reports)
    document.status = None
    await until_events(sink, 1)
    await until_reported(sink, lambda: sink.reports[-1] is None)
    await stop(task)


@pytest.mark.parametrize("status", [401, 403])
async def test_a_refused_request_fails_the_poller(document: Document, status: int) -> None:
    document.status = status
    with pytest.raises(UrlRefused, match=str(status)):
        async with asyncio.timeout(5):
            await poller(document).run(MemorySink())
    assert document.requests == 1
