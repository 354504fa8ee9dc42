"""What every dashboard page shares: the templates, the signed-in check, the assets.

Pages are rendered on the server (Jinja2) and updated in place with htmx; live parts
follow Server-Sent Events. Every asset comes from the gateway itself (``/ui/vendor/``,
installed by compose/setup.sh from compose/ui's npm lock; ``/ui/static/``, ours).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.staticfiles import StaticFiles

from pipeline.gateway.ui import session

HERE = Path(__file__).parent
VENDOR = HERE / "vendor"
STATIC = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
SETUP_HINT = ("the dashboard's browser assets are not installed here: run compose/setup.sh "
              "(it copies them into pipeline/gateway/ui/vendor/)")


def assets_ready() -> bool:
    return (VENDOR / ".stamp").is_file()


class SignInFirst(Exception):
    """A dashboard request without a session."""


class ForeignOrigin(Exception):
    """An unsafe dashboard request that did not come from the dashboard's own pages."""


def signed_in(request: Request) -> None:
    """The dependency of every dashboard route but the sign-in page's."""
    if not session.signed_in(request, request.app.state.token):
        raise SignInFirst
    if not session.same_origin(request):
        raise ForeignOrigin


SignedIn = Annotated[None, Depends(signed_in)]


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    """``template`` rendered with ``context``; ``section`` names the menu entry to mark."""
    if not assets_ready():
        return HTMLResponse(f"<h1>faasflow</h1><p>{SETUP_HINT}.</p>", 503)
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def _sign_in_first(request: Request, exc: Exception) -> Response:
    if request.headers.get("hx-request"):  # htmx follows HX-Redirect with a full page load
        return Response(status_code=401, headers={"HX-Redirect": f"{session.PATH}/login"})
    if request.method not in session.SAFE_METHODS or "text/html" not in request.headers.get(
            "accept", ""):
        return Response("sign in at /ui/login first", 401, media_type="text/plain")
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(request.url_for("ui_login").include_query_params(next=target), 303)


def _foreign_origin(request: Request, exc: Exception) -> Response:
    return Response("refused: this request did not come from the dashboard's own pages",
                    403, media_type="text/plain")


def install(app: FastAPI) -> None:
    """The error answers of the dashboard and the folders of its assets."""
    app.add_exception_handler(SignInFirst, _sign_in_first)
    app.add_exception_handler(ForeignOrigin, _foreign_origin)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui_static")
    app.mount("/ui/vendor", StaticFiles(directory=VENDOR, check_dir=False), name="ui_vendor")
