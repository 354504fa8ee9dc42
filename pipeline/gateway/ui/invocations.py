"""Invocations: a search over the results index, a live tail of Results as they land, and
one invocation whole (its event's data, output, logs, timings, attempts, callbacks).

The search is ``GET /v1/invocations``'s: the same ``InvocationQuery``, the same index
page. The tail follows the index's ``tail`` (one poller per gateway process, whoever
follows) and sends each new or changed row as a Server-Sent Event, rendered. A page names
in its tail's address the index's change it was queried at (``after``): what changed
between its query and its tail is sent too (a run shown ``running`` that ended meanwhile
would otherwise stay ``running`` on the page).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from pydantic import ValidationError

from pipeline.control import ControlPlane
from pipeline.errors import BrokerUnavailable, FaasflowError, NotFound, RetryableError
from pipeline.gateway.schemas import InvocationQuery
from pipeline.gateway.ui import forms
from pipeline.gateway.ui.payloads import shown
from pipeline.gateway.ui.web import SignedIn, page, templates
from pipeline.index import Query, Row
from pipeline.records import Event, Status

router = APIRouter(prefix="/ui/invocations", include_in_schema=False)

FIELDS = ("function", "status", "source", "since", "until", "limit", "cursor")
FOLLOWED = ("function", "status", "source")  # what the tail filters by
HEARTBEAT_S = 10.0  # a comment this often: proxies keep the stream, a gone client shows


def _control(request: Request) -> ControlPlane:
    control: ControlPlane = request.app.state.control
    return control


def sse(event: str, data: str) -> str:
    """One Server-Sent Event: each line of ``data`` on a ``data:`` line of its own."""
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {event}\n{lines}\n"


def tail_url(form: Mapping[str, Any], after: int | None) -> str:
    """``after``: the index's change the page was queried at (None: it was not)."""
    followed: dict[str, Any] = {name: form[name] for name in FOLLOWED if form.get(name)}
    if after is not None:
        followed["after"] = after
    return "/ui/invocations/tail" + (f"?{urlencode(followed)}" if followed else "")


def after_of(request: Request) -> int | None:
    """The change a page was queried at, from its tail's address (None: from now on)."""
    value = request.query_params.get("after", "")
    return int(value) if value.isdigit() else None


@router.get("", name="ui_invocations")
async def invocations(request: Request, _: SignedIn) -> Response:
    """The page, or with htmx only its results (``hx-push-url`` keeps the search a link)."""
    form = forms.body(request.query_params, FIELDS)
    rows: list[Row] = []
    next_cursor = refusal = None
    results = _control(request).results
    after: int | None = None
    try:
        after = await results.tail.change()  # before the query: what changes after is sent
        found = await results.page(InvocationQuery.model_validate(form).query())
        rows, next_cursor = found.rows, found.next_cursor
    except (ValidationError, FaasflowError) as exc:
        refusal = forms.refusal(exc)
    partial = request.headers.get("hx-target") == "invocation-results"
    more = urlencode({**form, "cursor": next_cursor}) if next_cursor else None
    return page(request, "invocations_results.html" if partial else "invocations.html",
                refusal.status if refusal else 200, section="invocations", title="Invocations",
                form=form, rows=rows, more=more, refusal=refusal,
                statuses=[s.value for s in Status], tail=tail_url(form, after),
                live="cursor" not in form)


@router.get("/tail", name="ui_invocations_tail")
async def tail(request: Request, _: SignedIn) -> Response:
    """Rows as the index gets them, newest last, as ``row`` events of rendered HTML."""
    try:
        query = InvocationQuery.model_validate(forms.body(request.query_params, FOLLOWED)
                                               ).query()
    except ValidationError as exc:
        return PlainTextResponse(forms.refusal(exc).message, 422)
    return StreamingResponse(follow(request, query, after_of(request)),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def follow(request: Request, query: Query, after: int | None = None,
                 heartbeat_s: float = HEARTBEAT_S) -> AsyncIterator[str]:
    """Until the client goes away (seen at the latest at the next heartbeat); from change
    ``after`` when it is given (``Tail.follow``)."""
    row_html = templates.get_template("invocations_row.html")
    async with _control(request).results.tail.follow(after) as batches:
        yield ": following\n\n"
        while not await request.is_disconnected():
            try:
                rows = await asyncio.wait_for(batches.get(), heartbeat_s)
            except TimeoutError:
                yield ": heartbeat\n\n"
                continue
            for row in rows:
                if query.admits(row):
                    yield sse("row", row_html.render(row=row))


@router.get("/{ident}", name="ui_invocation")
async def invocation(request: Request, ident: str, _: SignedIn) -> Response:
    control = _control(request)
    try:
        result = await control.result(ident)
    except NotFound as exc:
        return page(request, "invocations_missing.html", 404, section="invocations",
                    title="No such invocation", ident=ident, message=exc.message)
    except RetryableError as exc:
        return page(request, "invocations_missing.html", 503, section="invocations",
                    title="Invocation", ident=ident, refusal=forms.refusal(exc))
    event_data, input_note = None, None
    try:
        found = await control.results.event(control.results.rows_for_event(result.event_id))
    except BrokerUnavailable as exc:
        found, input_note = None, f"its event could not be read: {exc.message}"
    if found is not None:
        event = Event.from_dict(found)
        event_data = {"shown": shown(event.data), "type": event.type,
                      "content_type": event.datacontenttype, "time": event.time}
    elif input_note is None:
        input_note = ("its event is in no source's topic: a direct call's body is not kept, "
                      "or the event is past its topic's retention")
    return page(request, "invocations_detail.html", section="invocations", title=ident,
                result=result, event=event_data, input_note=input_note,
                output=shown(result.output), callbacks=control.results.callbacks(ident))
