"""Apache OpenWhisk's REST API (``/api/v1/namespaces/{namespace}/…``) on faasflow's
gateway: actions are functions, activations are invocations, triggers are sources and
active rules are subscriptions. Packages, sequences and web actions are not offered.

One namespace: ``_`` (the caller's own) and ``guest`` name it. The API key is
``<any user>:<the management token>`` (``edge``)."""

from __future__ import annotations

from fastapi import APIRouter

from pipeline.gateway.compat.openwhisk import actions, activations, triggers

router = APIRouter()
for _module in (actions, activations, triggers):
    router.include_router(_module.router)

__all__ = ["router"]
