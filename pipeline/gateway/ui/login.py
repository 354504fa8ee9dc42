"""Signing in and out of the dashboard with the management token (a form, never a URL)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from pipeline.gateway.ui import session
from pipeline.gateway.ui.web import SignedIn, page

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/login", name="ui_login")
async def login_form(request: Request, next: str | None = None) -> Response:
    return page(request, "login.html", next=session.landing(next))


@router.post("/login")
async def login(request: Request, token: Annotated[str, Form(max_length=4096)],
                next: Annotated[str | None, Form(max_length=2048)] = None) -> Response:
    expected = request.app.state.token
    if not session.same_origin(request) or not session.token_matches(expected, token):
        return page(request, "login.html", 401, next=session.landing(next),
                    error="That is not this gateway's token.")
    answer = RedirectResponse(session.landing(next), 303)
    session.open_session(answer, request, expected)
    return answer


@router.post("/logout")
async def logout(request: Request, _: SignedIn) -> Response:
    answer = RedirectResponse(request.url_for("ui_login"), 303)
    session.close_session(answer)
    return answer
