"""Apache OpenWhisk's REST API (``/api/v1/namespaces/{namespace}/…``) on faasflow's
gateway: actions are functions, activations are invocations, triggers are sources and
active rules are subscriptions. Packages, sequences and web actions are not offered.

One namespace: ``_`` (the caller's own) and ``guest`` name it. The API key is
``<any user>:<the management token>`` (``edge``)."""

from __future__ import annotations

from fastapi import APIRouter, Security

from pipeline.gateway.auth import BASIC, BEARER
from pipeline.gateway.compat.openwhisk import actions, activations, triggers
from pipeline.gateway.compat.openwhisk.edge import OpenWhiskRoute, documented
from pipeline.gateway.compat.openwhisk.records import NAMESPACE

router = APIRouter()
namespaces = APIRouter(tags=["openwhisk namespaces"], route_class=OpenWhiskRoute,
                       dependencies=[Security(BEARER), Security(BASIC)],
                       responses=documented(401))


@namespaces.get("/api/v1/namespaces", summary="The namespaces the key may use")
async def list_namespaces() -> list[str]:
    return [NAMESPACE]


for _module in (actions, activations, triggers):
    router.include_router(_module.router)
router.include_router(namespaces)

__all__ = ["router"]
