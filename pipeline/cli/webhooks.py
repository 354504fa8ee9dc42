"""``faasflow webhook``: register webhooks, rotate their secrets, and deliver to them as a
sender would (signed by the webhook's scheme)."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

import typer

from connectors.webhooks import Scheme, verifier
from pipeline.cli.groups import webhook
from pipeline.cli.output import JsonFlag, console, emit_json, fail, show, table
from pipeline.cli.resources import (
    Data,
    add_list_and_rm,
    client,
    gateway_errors,
    print_results,
    read_data,
)

WEBHOOK_COLUMNS = ("id", "name", "source", "scheme", "url")
DELIVERY_COLUMNS = ("received_at", "event_id", "type", "delivery_id", "size", "content_type")
ContentType = Annotated[str, typer.Option("--content-type", "-H", help="Content-Type to send.")]

Secret = Annotated[str | None, typer.Option(
    "--secret", help="The signing secret: TEXT, @FILE or - for stdin.", show_default=False)]


def read_secret(secret: str | None) -> str | None:
    return None if secret is None else read_data(secret).decode().strip()


def _print_secret(hook: dict[str, Any]) -> None:
    if hook.get("secret"):
        console.print(f"[bold]secret[/]: {hook['secret']}", highlight=False, markup=False)
        console.print("Shown this once: give it to the sender now. "
                      "'faasflow webhook rotate' makes a new one.")


@webhook.command("create")
@gateway_errors
def webhook_create(
    name: str,
    source: Annotated[str, typer.Option("--source", help="The event source it publishes to.")],
    scheme: Annotated[Scheme, typer.Option(help="How deliveries are verified.")] = Scheme.NONE,
    secret: Secret = None,
    delivery_header: Annotated[str | None, typer.Option(
        help="A header naming deliveries, for deduplication when the scheme names none.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Register a webhook; deliveries to its URL become events of SOURCE. A signed scheme
    gets a generated secret unless --secret gives one; it is printed once."""
    body: dict[str, Any] = {"name": name, "source": source, "scheme": scheme.value,
                            "secret": read_secret(secret), "delivery_header": delivery_header}
    hook = client().json("POST", "/v1/webhooks", json=body)
    show(hook, WEBHOOK_COLUMNS, as_json)
    if not as_json:
        _print_secret(hook)


@webhook.command("rotate")
@gateway_errors
def webhook_rotate(
    ident: str,
    secret: Secret = None,
    grace: Annotated[float | None, typer.Option(
        help="Seconds the replaced secret still verifies (default: the gateway's setting; "
        "0 revokes it at once).", show_default=False)] = None,
    as_json: JsonFlag = False,
) -> None:
    """Give a webhook a new secret (printed once); the old one keeps verifying for a while."""
    body = {"secret": read_secret(secret), "grace_s": grace}
    hook = client().json("POST", f"/v1/webhooks/{ident}/rotate", json=body)
    show(hook, (*WEBHOOK_COLUMNS, "previous_secrets_valid_until"), as_json)
    if not as_json:
        _print_secret(hook)


def delivery_headers(hook: dict[str, Any], body: bytes, secret: str | None,
                     delivery_id: str | None) -> dict[str, str]:
    """The headers a sender of ``hook``'s scheme adds: its signature (with ``secret``) and
    the delivery id (``delivery_id``, or a fresh one)."""
    headers: dict[str, str] = {}
    if delivery_id is not None and hook.get("delivery_header"):
        headers[hook["delivery_header"]] = delivery_id
    if secret is not None:
        scheme = verifier(hook["scheme"])
        if not scheme.signed:
            raise fail(f"webhook {hook['id']} is unsigned (scheme none): drop --secret")
        headers.update(scheme.sign(body, secret, time.time(),
                                   delivery_id or f"msg_{uuid.uuid4().hex}"))
    return headers


@webhook.command("send")
@gateway_errors
def webhook_send(
    ident: str,
    data: Data = None,
    content_type: ContentType = "text/plain",
    wait: Annotated[float, typer.Option(help="Seconds to wait for the results.")] = 0.0,
    secret: Secret = None,
    delivery_id: Annotated[str | None, typer.Option(
        help="Name the delivery; the same name again is a retry, published once.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Deliver a payload to a webhook, as a sender would; with --secret, signed by the
    webhook's scheme; with --wait, print the results."""
    gateway = client()
    body = read_data(data)
    headers = {"Content-Type": content_type}
    if secret is not None or delivery_id is not None:
        hook = gateway.json("GET", f"/v1/webhooks/{ident}")
        headers |= delivery_headers(hook, body, read_secret(secret), delivery_id)
    accepted = gateway.json("POST", f"/hooks/{ident}", content=body, headers=headers)
    event_id = accepted["event_id"]
    if wait <= 0:
        emit_json(accepted) if as_json else console.print(f"event {event_id} accepted")
        return
    print_results(gateway.json("GET", "/v1/invocations",
                                params={"event_id": event_id, "wait": wait}), as_json)


@webhook.command("deliveries")
@gateway_errors
def webhook_deliveries(
    ident: str,
    limit: Annotated[int, typer.Option(min=1, max=100, help="How many, at most.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """The last deliveries a webhook accepted, newest first, read from its source's log
    (refused ones were never published: the gateway's /metrics counts them)."""
    rows = client().json("GET", f"/v1/webhooks/{ident}/deliveries", params={"limit": limit})
    emit_json(rows) if as_json else table(rows, DELIVERY_COLUMNS, "deliveries")


add_list_and_rm(webhook, "webhooks", WEBHOOK_COLUMNS)
