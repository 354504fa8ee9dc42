from __future__ import annotations

from typing import Any

from fastapi import Response

from pipeline.gateway.answers import SubscriptionOut, error, errors, links
from pipeline.gateway.deps import Control, management
from pipeline.gateway.schemas import SubscriptionIn

router = management("/v1/subscriptions", "subscriptions")
NEXT = links("ident", "$response.body#/id", "unsubscribe")


@router.post("", status_code=201, summary="Subscribe a function to an event source",
             response_model=SubscriptionOut,
             responses={200: {"model": SubscriptionOut, "description": "Subscribed already",
                              **NEXT},
                        201: NEXT,
                        404: error("No function by that name."),
                        **errors(400, 413, 422, 503)})
async def subscribe(body: SubscriptionIn, control: Control, response: Response) -> dict[str, Any]:
    """201 with a new subscription; 200 with the existing one if it was subscribed already
    with the same filter and batching. A filter or batching that is not valid is refused
    with 422, whose message points at the bad part (``filter.data.amount: …``,
    ``batch_size: …``)."""
    subscription, created = await control.subscribe(body.function, body.source,
                                                    body.event_filter(), body.batching())
    response.status_code = 201 if created else 200
    return subscription.to_dict()


@router.get("", summary="List subscriptions", response_model=list[SubscriptionOut])
async def list_subscriptions(control: Control) -> list[dict[str, Any]]:
    subs = sorted(control.registry.subscriptions.values(), key=lambda s: (s.source, s.function))
    return [s.to_dict() for s in subs]


@router.delete("/{ident}", status_code=204, summary="Delete a subscription",
               responses=errors(404, 422, 503))
async def unsubscribe(ident: str, control: Control) -> None:
    await control.unsubscribe(ident)
