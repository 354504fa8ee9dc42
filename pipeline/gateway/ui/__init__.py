"""faasflow's dashboard at ``/ui`` and the API's page at ``/docs``, served by the gateway.

``install(app)`` adds both; the pages are on the gateway's port and behind its token (a
session cookie, see ``session``), and are left out of the OpenAPI document.
"""

from __future__ import annotations

from fastapi import FastAPI

from pipeline.gateway.ui import (
    deadletters,
    docs,
    functions,
    invocations,
    login,
    overview,
    replays,
    sources,
    web,
)


def install(app: FastAPI) -> None:
    web.install(app)
    for module in (login, overview, functions, sources, docs, invocations, deadletters,
                   replays):
        app.include_router(module.router)
