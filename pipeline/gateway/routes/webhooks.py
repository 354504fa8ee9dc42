from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from pipeline.gateway.deps import Authenticated, Control
from pipeline.gateway.schemas import WebhookIn
from pipeline.records import Webhook

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], dependencies=Authenticated)


def view(hook: Webhook) -> dict[str, Any]:
    return {**hook.to_dict(), "url": f"/hooks/{hook.id}"}


@router.post("", status_code=201, summary="Register a webhook")
async def create_webhook(body: WebhookIn, control: Control) -> dict[str, Any]:
    return view(await control.create_webhook(body.name, body.source))


@router.get("", summary="List webhooks")
async def list_webhooks(control: Control) -> list[dict[str, Any]]:
    hooks = sorted(control.registry.webhooks.values(), key=lambda h: (h.name, h.id))
    return [view(h) for h in hooks]


@router.get("/{ident}", summary="Get a webhook")
async def get_webhook(ident: str, control: Control) -> dict[str, Any]:
    return view(control.registry.webhook(ident))


@router.delete("/{ident}", status_code=204, summary="Delete a webhook")
async def delete_webhook(ident: str, control: Control) -> None:
    await control.delete_webhook(ident)
