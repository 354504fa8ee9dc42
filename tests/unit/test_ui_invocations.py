"""The invocations pages without a broker: a malformed search, an unknown invocation, the
broker down, and the live tail's events and end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from pipeline.errors import BrokerUnavailable, NotFound
from pipeline.gateway.ui import invocations, session, web
from pipeline.index import Page, Query, Row
from pipeline.index.tail import Tail
from pipeline.records import Position, Result, Status

TOKEN = "unit-token"


def row(ident: str, function: str = "echo") -> Row:
    return Row.of(Result(invocation_id=ident, event_id="ev", function=function,
                         status=Status.SUCCEEDED, queued_at="2026-12-01T10:00:00.000000Z"),
                  Position(0, 0))


class Results:
    def __init__(self) -> None:
        self.down = False
        self.asked: list[Query] = []
        self.tail = Tail(self._changes, every_s=0.01)
        self.written: list[Row] = []

    async def page(self, query: Query) -> Page:
        if self.down:
            raise BrokerUnavailable("no broker answered within 5s")
        self.asked.append(query)
        return Page([row("inv-1")], None)

    async def _changes(self, after: int) -> tuple[int, list[Row]]:
        rows, self.written = self.written, []
        return after + 1, rows


class Control:
    def __init__(self) -> None:
        self.results = Results()

    async def result(self, ident: str) -> Result:
        if self.results.down:
            raise BrokerUnavailable("no broker answered within 5s")
        raise NotFound(f"invocation {ident!r} does not exist")


@pytest.fixture
def control() -> Control:
    return Control()


@pytest_asyncio.fixture
async def client(control: Control) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    web.install(app)
    app.include_router(invocations.router)
    app.state.token = TOKEN
    app.state.control = control
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://gw") as running:
        running.cookies.set(session.COOKIE, session.session_value(TOKEN), path="/ui")
        yield running


async def test_a_search_is_the_apis_query(client: httpx.AsyncClient, control: Control) -> None:
    answer = await client.get("/ui/invocations", params={"function": "echo", "status": "failed",
                                                   "source": "", "since": "2026-12-01T10:00:00Z"})
    assert answer.status_code == 200
    assert 'id="inv-inv-1"' in answer.text
    assert control.results.asked == [Query(function="echo", status="failed",
                                           since="2026-12-01T10:00:00.000000Z")]
    # the index's change it was queried at: what changes after it is sent by the tail
    assert ('data-tail="/ui/invocations/tail?function=echo&amp;status=failed&amp;after=0"'
            in answer.text)


async def test_a_malformed_search_is_a_message_by_the_form(client: httpx.AsyncClient) -> None:
    answer = await client.get("/ui/invocations", params={"since": "yesterday"},
                        headers={"HX-Request": "true", "HX-Target": "invocation-results"})
    assert answer.status_code == 422
    assert "Check the form: since:" in answer.text
    assert "not an RFC 3339 time" in answer.text
    assert "<html" not in answer.text  # htmx's partial
    bad_status = await client.get("/ui/invocations", params={"status": "bored"})
    assert bad_status.status_code == 422


async def test_the_broker_down_is_a_banner_not_a_500(client: httpx.AsyncClient,
                                                     control: Control) -> None:
    control.results.down = True
    answer = await client.get("/ui/invocations")
    assert answer.status_code == 503
    assert "Kafka is not answering" in answer.text
    assert 'role="alert"' in answer.text
    one = await client.get("/ui/invocations/inv-1")
    assert one.status_code == 503
    assert "Kafka is not answering" in one.text


async def test_an_unknown_invocation_is_a_404_page_in_the_layout(client: httpx.AsyncClient) -> None:
    answer = await client.get("/ui/invocations/nope<b>")
    assert answer.status_code == 404
    assert 'aria-label="Dashboard"' in answer.text
    assert "invocation &#39;nope&lt;b&gt;&#39; does not exist" in answer.text


def test_an_event_puts_each_line_on_a_data_line() -> None:
    assert invocations.sse("row", "<tr>\n<td>a</td>\n</tr>") == (
        "event: row\ndata: <tr>\ndata: <td>a</td>\ndata: </tr>\n\n")
    assert invocations.sse("row", "") == "event: row\ndata: \n\n"


class Gone:
    """A request whose client goes away after ``checks`` looks."""

    def __init__(self, control: Control, checks: int) -> None:
        self.app = SimpleNamespace(state=SimpleNamespace(control=control))
        self.checks = checks

    async def is_disconnected(self) -> bool:
        self.checks -= 1
        return self.checks < 0


async def test_the_tail_sends_matching_rows_and_heartbeats_and_ends_with_its_client(
        control: Control) -> None:
    request: Any = Gone(control, 2)
    stream = invocations.follow(request, Query(function="echo"), heartbeat_s=0.05)
    assert await anext(stream) == ": following\n\n"
    control.results.written = [row("a"), row("b", function="other")]
    sent = await asyncio.wait_for(anext(stream), 1)
    assert sent.startswith("event: row\n")
    assert 'id="inv-a"' in sent
    assert await asyncio.wait_for(anext(stream), 1) == ": heartbeat\n\n"
    assert control.results.tail.following == 1
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(stream), 1)
    assert control.results.tail.following == 0  # its poller stopped with it


async def test_a_tail_after_a_change_sends_what_changed_since_the_page_was_queried(
        control: Control) -> None:
    request: Any = Gone(control, 2)
    control.results.written = [row("a")]  # ended after the page was queried (change 0)
    stream = invocations.follow(request, Query(function="echo"), after=0, heartbeat_s=0.05)
    assert await anext(stream) == ": following\n\n"
    sent = await asyncio.wait_for(anext(stream), 1)
    assert 'id="inv-a"' in sent
    await stream.aclose()
