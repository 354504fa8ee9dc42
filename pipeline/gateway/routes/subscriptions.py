from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from pipeline.gateway.deps import Authenticated, Control
from pipeline.gateway.schemas import SubscriptionIn

router = APIRouter(prefix="/v1/subscriptions", tags=["subscriptions"], dependencies=Authenticated)


@router.post("", status_code=201, summary="Subscribe a function to an event source")
async def subscribe(body: SubscriptionIn, control: Control, response: Response) -> dict[str, Any]:
    """201 with a new subscription; 200 with the existing one if it was subscribed already."""
    subscription, created = await control.subscribe(body.function, body.source)
    response.status_code = 201 if created else 200
    return subscription.to_dict()


@router.get("", summary="List subscriptions")
async def list_subscriptions(control: Control) -> list[dict[str, Any]]:
    subs = sorted(control.registry.subscriptions.values(), key=lambda s: (s.source, s.function))
    return [s.to_dict() for s in subs]


@router.delete("/{ident}", status_code=204, summary="Delete a subscription")
async def unsubscribe(ident: str, control: Control) -> None:
    await control.unsubscribe(ident)
