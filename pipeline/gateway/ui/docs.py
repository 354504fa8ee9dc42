"""``/docs``: Swagger UI from the gateway's own copy of its assets, so the API's page works on
a network with no way out (FastAPI's default loads them from a CDN: a blank page there)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import PlainTextResponse, Response

from pipeline.gateway.ui.web import SETUP_HINT, assets_ready

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def docs(request: Request) -> Response:
    if not assets_ready():
        return PlainTextResponse(SETUP_HINT, 503)
    vendor = "/ui/vendor"
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url or "/openapi.json",
        title=f"{request.app.title} API",
        swagger_js_url=f"{vendor}/swagger-ui-bundle.js",
        swagger_css_url=f"{vendor}/swagger-ui.css",
        swagger_favicon_url=f"{vendor}/swagger-favicon.png",
    )
