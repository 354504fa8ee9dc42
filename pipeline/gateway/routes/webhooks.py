from __future__ import annotations

from typing import Any

from fastapi import Query

from connectors.webhooks.rotation import current
from pipeline.delivery_log import WINDOW
from pipeline.gateway.answers import DeliveryOut, WebhookOut, WebhookWithSecret, errors, links
from pipeline.gateway.deps import Control, management
from pipeline.gateway.schemas import RotateIn, WebhookIn
from pipeline.specs import Webhook

router = management("/v1/webhooks", "webhooks")

HINT_CHARS = 4
NEXT = links("ident", "$response.body#/id", "get_webhook", "receive_webhook", "rotate_secret",
             "webhook_deliveries", "delete_webhook")


def view(hook: Webhook) -> dict[str, Any]:
    """What the API shows of a webhook: never a secret, only the current one's last
    characters (to tell secrets apart) and until when replaced ones still verify."""
    secret = current(hook)
    expiries = [s.expires_at for s in hook.secrets[1:] if s.expires_at]
    return {
        "id": hook.id, "name": hook.name, "source": hook.source, "scheme": hook.scheme,
        "delivery_header": hook.delivery_header, "created_at": hook.created_at,
        "url": f"/hooks/{hook.id}",
        "secret_hint": f"…{secret[-HINT_CHARS:]}" if secret else None,
        "previous_secrets_valid_until": max(expiries) if expiries else None,
    }


def with_secret(hook: Webhook) -> dict[str, Any]:
    """The view plus the current secret: only in the answer that made that secret."""
    return {**view(hook), "secret": current(hook)}


@router.post("", status_code=201, summary="Register a webhook (the answer holds its secret)",
             response_model=WebhookWithSecret, responses={201: NEXT, **errors(400, 413, 422, 503)})
async def create_webhook(body: WebhookIn, control: Control) -> dict[str, Any]:
    secret = body.secret.get_secret_value() if body.secret else None
    hook = await control.create_webhook(body.name, body.source, body.scheme.value, secret,
                                        body.delivery_header)
    return with_secret(hook)


@router.post("/{ident}/rotate", summary="Rotate a webhook's secret (the answer holds the new one)",
             response_model=WebhookWithSecret,
             responses={200: NEXT, **errors(400, 404, 413, 422, 503)})
async def rotate_secret(ident: str, control: Control,
                        body: RotateIn | None = None) -> dict[str, Any]:
    """422 for an unsigned webhook (scheme ``none``): it has no secret to rotate."""
    body = body or RotateIn()
    secret = body.secret.get_secret_value() if body.secret else None
    return with_secret(await control.rotate_webhook_secret(ident, secret, body.grace_s))


@router.get("", summary="List webhooks", response_model=list[WebhookOut])
async def list_webhooks(control: Control) -> list[dict[str, Any]]:
    hooks = sorted(control.registry.webhooks.values(), key=lambda h: (h.name, h.id))
    return [view(h) for h in hooks]


@router.get("/{ident}", summary="Get a webhook", response_model=WebhookOut,
            responses=errors(404, 422))
async def get_webhook(ident: str, control: Control) -> dict[str, Any]:
    return view(await control.found(control.registry.webhook, ident))


@router.get("/{ident}/deliveries", summary="A webhook's last accepted deliveries, newest first",
            response_model=list[DeliveryOut], responses=errors(404, 422, 503),
            description=f"Read from its source's topic, so every gateway answers the same, "
            f"including the deliveries no function is subscribed to. Only the last {WINDOW} "
            "records of each partition of the topic are looked at: on a busy source, older "
            "deliveries are not shown. Refused requests (401, 413) were never published: "
            "`/metrics` counts them, as `faasflow_http_requests_total` by status.")
async def webhook_deliveries(ident: str, control: Control,
                             limit: int = Query(default=20, ge=1, le=100)
                             ) -> list[dict[str, Any]]:
    found = await control.webhook_deliveries([ident], limit)
    return [delivery.to_dict() for delivery in found[ident]]


@router.delete("/{ident}", status_code=204, summary="Delete a webhook",
               responses=errors(404, 422, 503))
async def delete_webhook(ident: str, control: Control) -> None:
    await control.delete_webhook(ident)
