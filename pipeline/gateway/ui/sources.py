"""Sources: where events come from (webhooks, connectors) and which functions they run
(subscriptions). Register a webhook, rotate its secret, subscribe a function, delete.

Every action goes through the API's input model and ``ControlPlane`` call. A webhook's
secret is shown once, in the answer to the action that made it (as the API does), never in
a URL, and that answer is not cached.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from connectors.webhooks import Scheme
from pipeline.control import ControlPlane
from pipeline.delivery_log import WINDOW
from pipeline.errors import FaasflowError
from pipeline.gateway.errors import status_of
from pipeline.gateway.routes.webhooks import view, with_secret
from pipeline.gateway.schemas import RotateIn, SubscriptionIn, WebhookIn
from pipeline.gateway.ui import forms
from pipeline.gateway.ui.overview import latest
from pipeline.gateway.ui.web import SignedIn, page

router = APIRouter(prefix="/ui/sources", include_in_schema=False)

RECENT = 5  # deliveries shown per webhook
UNREAD = ("Kafka is not answering, so the webhooks' last deliveries cannot be shown: reload "
          "once the broker is back.")
WEBHOOK_FIELDS = ("name", "source", "scheme", "delivery_header")
SUBSCRIPTION_FIELDS = ("function", "source", "batch_size", "batch_window_ms",
                       "max_record_age_s")
SECRET_ONCE = {"Cache-Control": "no-store"}
SUMMARY_CHARS = 80


def checkpoint_summary(state: Mapping[str, Any]) -> str:
    """A connector's checkpoint in one line: its plain values (a block number, an etag) and
    the size of each list or object in it (an Ethereum connector's unconfirmed blocks), cut
    at ``SUMMARY_CHARS``. The page shows the whole of it on demand."""
    line = ", ".join(f"{name}: {len(value)} items" if isinstance(value, dict | list)
                     else f"{name}={value}" for name, value in state.items())
    return line if len(line) <= SUMMARY_CHARS else line[:SUMMARY_CHARS - 1] + "…"


def subscription_body(form: dict[str, Any]) -> dict[str, Any]:
    """The ``POST /v1/subscriptions`` body the subscribe form stands for."""
    found = forms.body(form, SUBSCRIPTION_FIELDS)
    event_filter = forms.json_object(str(form.get("filter", "")), "filter")
    flags = {name: forms.flag(form, name) for name in ("split_on_error", "ordered")}
    return {**found, "filter": event_filter,
            **{name: value for name, value in flags.items() if value is not None}}


def _control(request: Request) -> ControlPlane:
    control: ControlPlane = request.app.state.control
    return control


async def _webhooks(control: ControlPlane) -> tuple[list[dict[str, Any]], forms.Refusal | None]:
    """Each webhook as the API shows it, with its last deliveries (from the log, all at
    once) and the invocations each made (from the index); with the broker down, the
    webhooks without their deliveries and why."""
    hooks = sorted(control.registry.webhooks.values(), key=lambda h: (h.name, h.id))
    try:
        found = await control.webhook_deliveries([hook.id for hook in hooks], RECENT)
    except FaasflowError as exc:  # the rest of the page still shows
        return ([{**view(hook), "deliveries": None} for hook in hooks],
                forms.Refusal(f"{UNREAD} ({exc.message})", status_of(exc), banner=True))
    return [{**view(hook), "deliveries": [
        {**d.to_dict(), "runs": control.results.rows_for_event(d.event_id)}
        for d in found[hook.id]]} for hook in hooks], None


async def _listing(request: Request, status: int = 200, *, refused: str | None = None,
                   refusal: forms.Refusal | None = None, form: dict[str, Any] | None = None,
                   revealed: dict[str, Any] | None = None, **notice: str | None) -> Response:
    control = _control(request)
    registry = control.registry
    hooks, unread = await _webhooks(control)
    sample = latest(request)
    lag = {name: s.lag for name, s in sample.sources.items()} if sample else {}
    answer = page(
        request, "sources.html", status, section="sources", title="Sources",
        base=str(request.base_url).rstrip("/"), hooks=hooks, unread=unread, window=WINDOW,
        lag=lag,
        connectors=[{**c, "summary": checkpoint_summary(c["checkpoint"]["state"])
                     if c["checkpoint"] else None} for c in control.connectors()],
        subscriptions=sorted(registry.subscriptions.values(),
                             key=lambda s: (s.source, s.function)),
        functions=sorted(registry.functions), sources=sorted(registry.sources()),
        schemes=list(Scheme), refused=refused, refusal=refusal, form=form or {},
        revealed=revealed, notice=notice)
    if revealed:
        answer.headers.update(SECRET_ONCE)
    return answer


@router.get("", name="ui_sources")
async def sources(request: Request, _: SignedIn, deleted: str | None = None,
                  gone: str | None = None, down: str | None = None) -> Response:
    return await _listing(request, deleted=deleted, gone=gone, down=down)


@router.post("/webhooks")
async def register(request: Request, _: SignedIn) -> Response:
    form = dict(await request.form())
    try:
        body = WebhookIn.model_validate(forms.body(form, WEBHOOK_FIELDS))
        hook = await _control(request).create_webhook(body.name, body.source, body.scheme.value,
                                                      None, body.delivery_header)
    except (ValidationError, FaasflowError) as exc:
        refusal = forms.refusal(exc)
        return await _listing(request, refusal.status, refused="webhook", refusal=refusal,
                              form=form)
    return await _listing(request, 201, revealed=with_secret(hook))


@router.post("/webhooks/{ident}/rotate")
async def rotate(request: Request, ident: str, _: SignedIn) -> Response:
    form = dict(await request.form())
    try:
        body = RotateIn.model_validate(forms.body(form, ("grace_s",)))
        hook = await _control(request).rotate_webhook_secret(ident, None, body.grace_s)
    except (ValidationError, FaasflowError) as exc:
        refusal = forms.refusal(exc)
        return await _listing(request, refusal.status, refused=ident, refusal=refusal)
    return await _listing(request, revealed=with_secret(hook))


@router.post("/webhooks/{ident}/delete")
async def delete_webhook(request: Request, ident: str, _: SignedIn) -> Response:
    return await _deleted(request, _control(request).delete_webhook(ident), f"webhook {ident}")


@router.post("/subscriptions")
async def subscribe(request: Request, _: SignedIn) -> Response:
    form = dict(await request.form())
    try:
        body = SubscriptionIn.model_validate(subscription_body(form))
        await _control(request).subscribe(body.function, body.source, body.event_filter(),
                                          body.batching())
    except (ValidationError, FaasflowError) as exc:
        refusal = forms.refusal(exc)
        return await _listing(request, refusal.status, refused="subscription",
                              refusal=refusal, form=form)
    return forms.told("/ui/sources#subscriptions")


@router.post("/subscriptions/{ident}/delete")
async def unsubscribe(request: Request, ident: str, _: SignedIn) -> Response:
    return await _deleted(request, _control(request).unsubscribe(ident),
                          f"subscription {ident}")


async def _deleted(request: Request, deleting: Awaitable[None], what: str) -> Response:
    try:
        await deleting
    except FaasflowError as exc:
        outcome = "down" if forms.refusal(exc).banner else "gone"
        return forms.told("/ui/sources", **{outcome: what})
    return forms.told("/ui/sources", deleted=what)
