"""A verified delivery as a CloudEvent.

    data             the body: JSON as JSON, text as text, anything else as data_base64;
                     a form body (application/x-www-form-urlencoded) as a JSON object
    datacontenttype  the request's Content-Type (application/json for a converted form)
    type             com.github.<X-GitHub-Event> for GitHub, else dev.faasflow.webhook.received
    subject          the webhook's name
    extensions       faasflowwebhook (its id), faasflowscheme (how it was verified),
                     faasflowdelivery (the delivery id, when the sender named one)

Secrets and signatures are never copied onto the event.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from connectors.webhooks.base import Headers
from connectors.webhooks.github import EVENT as GITHUB_EVENT
from pipeline.records import Event, dumps
from pipeline.specs import Webhook

WEBHOOK_EVENT_TYPE = "dev.faasflow.webhook.received"
FORM = "application/x-www-form-urlencoded"
_TYPE_PART = re.compile(r"[a-z0-9_.-]{1,100}")


def form_as_json(body: bytes) -> bytes | None:
    """A form body as a JSON object (a field sent more than once becomes a list), or None
    when it does not parse (it is then kept as it came)."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True,
                          errors="strict")
    except ValueError:  # includes UnicodeDecodeError
        return None
    fields: dict[str, str | list[str]] = {}
    for name, value in pairs:
        if name not in fields:
            fields[name] = value
            continue
        old = fields[name]
        fields[name] = [*old, value] if isinstance(old, list) else [old, value]
    return dumps(fields)


def event_type(headers: Headers) -> str:
    github = headers.get(GITHUB_EVENT, "").strip().lower()
    if _TYPE_PART.fullmatch(github):
        return f"com.github.{github}"
    return WEBHOOK_EVENT_TYPE


def webhook_event(hook: Webhook, event_id: str, headers: Headers, body: bytes,
                  delivery_id: str | None) -> Event:
    content_type = headers.get("content-type") or None
    if body and content_type and content_type.split(";")[0].strip().lower() == FORM:
        converted = form_as_json(body)
        if converted is not None:
            body, content_type = converted, "application/json"
    extensions = {"faasflowwebhook": hook.id, "faasflowscheme": hook.scheme}
    if delivery_id is not None:
        extensions["faasflowdelivery"] = delivery_id
    return Event(id=event_id, source=hook.source, type=event_type(headers), data=body,
                 datacontenttype=content_type, subject=hook.name, extensions=extensions)
