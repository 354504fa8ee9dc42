"""The Functions and Sources pages rendered against in-memory parts: input refused and the
broker down are told on the page (422, 503 with a banner), never a 500; deleting what is
gone says so."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio
from fastapi import FastAPI

from pipeline import errors
from pipeline.connector_states import ConnectorStates
from pipeline.delivery_log import Delivery
from pipeline.gateway import ui
from pipeline.gateway.ui import session
from pipeline.index import Page, Query, Row
from pipeline.observability.pulse import Sample
from pipeline.records import Position, dumps
from pipeline.registry import Registry, encode, record_key
from pipeline.settings import Settings
from pipeline.specs import ConnectorSpec, FunctionSpec, Mode, Webhook
from tests.unit.test_ui_overview import SAMPLE

TOKEN = "unit-token"
CHECKPOINT = {"next": 42, "blocks": [{"hash": "<b>0xab</b>"}]}
ORIGIN = "http://testserver"
HOOK = Webhook(id="wh_1", name="orders", source="shop")
DELIVERY = Delivery(event_id="ev-1", received_at="2026-12-02T10:00:00.000000Z",
                    type="dev.faasflow.webhook.received", delivery_id="msg_1", size=12,
                    content_type="application/json", event_position=Position(0, 3))


class Results:
    async def page(self, query: Query) -> Page:
        return Page(rows=[], next_cursor=None)

    def rows_for_event(self, event_id: str) -> list[Row]:
        return []


class Control:
    """``ControlPlane`` as the pages use it, its writes failing as told."""

    def __init__(self, failure: errors.FaasflowError) -> None:
        self.settings = Settings()
        self.registry = Registry()
        self.results = Results()
        self.failure = failure
        spec = FunctionSpec(name="resize", image="faasflow/runtime-python:latest",
                            image_digest="sha256:abc", mode=Mode.WARM)
        self.registry.apply(record_key(spec).encode(), encode(spec))
        self.registry.apply(record_key(HOOK).encode(), encode(HOOK))

    async def found(self, lookup: Any, key: str) -> Any:
        return lookup(key)

    async def put_function(self, draft: FunctionSpec) -> FunctionSpec:
        raise self.failure

    async def delete_function(self, name: str) -> None:
        raise self.failure

    async def create_webhook(self, *args: Any) -> None:
        raise self.failure

    async def webhook_deliveries(self, idents: list[str], limit: int) -> dict[str, list[Delivery]]:
        """Read from the log: only the broker down fails it."""
        if isinstance(self.failure, errors.BrokerUnavailable):
            raise self.failure
        return {ident: [DELIVERY] for ident in idents}

    async def unsubscribe(self, ident: str) -> None:
        raise self.failure

    def connectors(self) -> list[dict[str, Any]]:
        states = ConnectorStates()
        states.checkpoints.apply(b"chain", dumps({"state": CHECKPOINT, "offsets": {},
                                                  "at": "2026-12-02T10:00:00+00:00"}))
        return [states.describe(ConnectorSpec(name="chain", kind="ethereum", source="blocks")),
                states.describe(ConnectorSpec(name="poll", kind="http-poll", source="docs"))]


class StillPulse:
    """``Pulse`` as the pages read it: one sample taken."""

    interval_s = 2.0

    def history(self) -> list[Sample]:
        return [SAMPLE]


class Warm:
    def containers(self) -> dict[str, tuple[int, int]]:
        return {"resize": (1, 2)}


class Runtimes:
    warm = Warm()


async def client(failure: errors.FaasflowError) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    ui.install(app)
    app.state.token = TOKEN
    app.state.control = Control(failure)
    app.state.runtimes = Runtimes()
    app.state.pulse = StillPulse()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN,
                                 headers={"Origin": ORIGIN}, follow_redirects=True,
                                 cookies={session.COOKIE: session.session_value(TOKEN)}
                                 ) as browser:
        yield browser


@pytest_asyncio.fixture
async def broker_down() -> AsyncIterator[httpx.AsyncClient]:
    async for browser in client(errors.BrokerUnavailable("no broker answers at kafka:9092")):
        yield browser


@pytest_asyncio.fixture
async def gone() -> AsyncIterator[httpx.AsyncClient]:
    async for browser in client(errors.NotFound("function 'resize' not found")):
        yield browser


async def test_the_functions_page_shows_modes_and_this_gateways_warm_containers(
        broker_down: httpx.AsyncClient) -> None:
    answer = await broker_down.get("/ui/functions")
    assert answer.status_code == 200
    assert 'data-function="resize"' in answer.text
    assert "1 / 2" in answer.text


async def test_a_deploy_with_the_broker_down_shows_a_banner_not_a_500(
        broker_down: httpx.AsyncClient) -> None:
    answer = await broker_down.post("/ui/functions", data={"name": "f", "kind": "image",
                                                     "image": "alpine:3"})
    assert answer.status_code == 503
    assert 'class="notice bad banner"' in answer.text
    assert "Kafka is not answering" in answer.text
    assert 'value="alpine:3"' in answer.text  # what was typed stays


async def test_a_form_refused_by_the_model_says_what_beside_each_input(
        broker_down: httpx.AsyncClient) -> None:
    answer = await broker_down.post("/ui/functions", data={"name": "f", "kind": "code",
                                                     "runtime": "cobol", "code": "x",
                                                     "memory_mb": "1"})
    assert answer.status_code == 422
    assert 'data-field="runtime"' in answer.text
    assert 'data-field="memory_mb"' in answer.text
    bad_name = await broker_down.post("/ui/functions", data={"name": "Not A Name"})
    assert bad_name.status_code == 422
    assert 'data-field="name"' in bad_name.text


async def test_a_webhook_not_registered_for_the_broker_down_is_told_on_the_sources_page(
        broker_down: httpx.AsyncClient) -> None:
    answer = await broker_down.post("/ui/sources/webhooks",
                                    data={"name": "gh", "source": "push"})
    assert answer.status_code == 503
    assert "Kafka is not answering" in answer.text
    assert (await broker_down.get("/ui/sources")).status_code == 200


async def test_each_connector_shows_its_last_checkpoint_in_a_line_and_whole_on_demand(
        broker_down: httpx.AsyncClient) -> None:
    answer = await broker_down.get("/ui/sources")
    assert answer.status_code == 200
    chain, poll = answer.text.split('id="connectors-table"')[1].split("<tr><td>")[1:3]
    assert "next=42, blocks: 1 items" in chain
    assert '<time datetime="2026-12-02T10:00:00+00:00">' in chain
    assert '"hash": "\\u003cb\\u003e0xab' in chain
    assert "<b>" not in chain
    assert "none yet" in poll


async def test_the_broker_down_hides_the_last_deliveries_behind_a_banner_not_a_500(
        broker_down: httpx.AsyncClient) -> None:
    answer = await broker_down.get("/ui/sources")
    assert answer.status_code == 200
    assert "last deliveries cannot be shown" in answer.text
    assert 'class="notice bad banner"' in answer.text
    assert 'data-webhook="wh_1"' in answer.text
    assert 'data-event="ev-1"' not in answer.text


async def test_each_webhook_shows_its_last_deliveries(gone: httpx.AsyncClient) -> None:
    answer = await gone.get("/ui/sources")
    assert answer.status_code == 200
    shown = answer.text.split('data-deliveries="wh_1"')[1].split("</table>")[0]
    assert 'data-event="ev-1"' in shown
    assert "msg_1" in shown
    assert "12 B" in shown
    assert "banner" not in answer.text


async def test_deleting_what_is_gone_says_so(gone: httpx.AsyncClient) -> None:
    answer = await gone.post("/ui/functions/resize/delete", follow_redirects=False)
    assert answer.status_code == 303
    shown = await gone.get(answer.headers["location"])
    assert "Nothing to delete: function resize was not there" in shown.text


async def test_deleting_with_the_broker_down_says_nothing_was_deleted(
        broker_down: httpx.AsyncClient) -> None:
    shown = await broker_down.post("/ui/sources/subscriptions/sub_1/delete")  # and follows
    assert "so subscription sub_1 was not deleted" in shown.text


async def test_the_overview_carries_its_history_and_current_tables(
        broker_down: httpx.AsyncClient) -> None:
    answer = await broker_down.get("/ui/")
    assert answer.status_code == 200
    assert 'id="pulse-history"' in answer.text
    assert '"events_per_s": 2.5' in answer.text
    assert 'data-source="orders"' in answer.text


async def test_a_poll_without_a_session_is_sent_to_sign_in(
        broker_down: httpx.AsyncClient) -> None:
    """The function page's table refresh and the overview's stream, signed out: htmx
    follows ``HX-Redirect``; an EventSource just gets its 401."""
    broker_down.cookies.clear()
    polled = await broker_down.get("/ui/functions/resize/invocations",
                                   headers={"HX-Request": "true"})
    assert polled.status_code == 401
    assert polled.headers["HX-Redirect"] == "/ui/login"
    streamed = await broker_down.get("/ui/overview/stream",
                                     headers={"Accept": "text/event-stream"})
    assert streamed.status_code == 401
