"""The Fn Project's HTTP API on faasflow's gateway: v2 (``/v2/apps``, ``/v2/fns``,
``/v2/triggers``, ``/invoke/{fn_id}``, ``/t/{app}/{source}``) and v1 (``/v1/apps``,
``/v1/apps/{app}/routes``, ``/r/{app}/{route}``). Fns are faasflow functions that speak Fn's
function contract (``pipeline.runtime.fn``); how Fn's objects map onto faasflow's records is
in ``records``; errors are Fn's ``{"message"}``. Management needs faasflow's token (Fn's own
server asks for none: see the README)."""

from __future__ import annotations

from fastapi import APIRouter

from pipeline.gateway.compat.fn import calls, v1, v2

router = APIRouter()
for part in (v2, v1, calls):
    router.include_router(part.router)
