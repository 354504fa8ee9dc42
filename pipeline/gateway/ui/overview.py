"""The overview: live charts of the pipeline."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pipeline.gateway.ui.web import SignedIn, page

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/", name="ui_overview")
async def overview(request: Request, _: SignedIn) -> Response:
    return page(request, "overview.html", section="overview", title="Overview")
