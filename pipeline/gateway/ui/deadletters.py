"""Dead letters: what failed for good, why, and redriving the ones chosen (or every one a
filter matches).

Listing and redriving are ``GET /v1/deadletters`` and ``POST /v1/deadletters/redrive``:
the same input models (``DeadLetterListing``, ``RedriveIn``), the same ``DeadLetterLog``
calls; the outcome shown is the one the API answers (redriven, remaining, skipped).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from pipeline.control import ControlPlane
from pipeline.deadletters import Reason
from pipeline.errors import FaasflowError
from pipeline.gateway.schemas import DeadLetterListing, RedriveIn
from pipeline.gateway.ui import forms
from pipeline.gateway.ui.web import SignedIn, page
from pipeline.redrive import Redriven

router = APIRouter(prefix="/ui/dead-letters", include_in_schema=False)

FILTERS = ("function", "reason", "since", "until")
NOTHING_CHOSEN = ("Nothing was redriven: tick the dead letters to redrive, or use "
                  "“Redrive all matching”.")


def _control(request: Request) -> ControlPlane:
    control: ControlPlane = request.app.state.control
    return control


async def _listing(request: Request, form: dict[str, Any], status: int = 200,
                   refusal: forms.Refusal | None = None,
                   outcome: Redriven | None = None) -> Response:
    """The page, or with htmx only the list (``#dead-letters``)."""
    letters: list[Any] = []
    try:
        query = DeadLetterListing.model_validate(form)
        letters = await _control(request).dead_letters.find(query.where(query.redrivable),
                                                            query.limit)
    except (ValidationError, FaasflowError) as exc:
        refusal = refusal or forms.refusal(exc)
    if refusal is not None and status == 200:
        status = refusal.status
    partial = request.headers.get("hx-target") == "dead-letters"
    return page(request, "deadletters_list.html" if partial else "deadletters.html", status,
                section="deadletters", title="Dead letters", form=form, letters=letters,
                refusal=refusal, outcome=outcome, reasons=[r.value for r in Reason])


@router.get("", name="ui_dead_letters")
async def dead_letters(request: Request, _: SignedIn) -> Response:
    return await _listing(request, forms.body(request.query_params, FILTERS))


@router.post("/redrive", name="ui_redrive")
async def redrive(request: Request, _: SignedIn) -> Response:
    """``scope=chosen`` redrives the ticked letters (``keys``) of those the filter matches;
    ``scope=all`` every one the filter matches."""
    form = await request.form()
    filters = forms.body(form, FILTERS)
    chosen = form.get("scope") != "all"
    keys = [str(key) for key in form.getlist("keys")] if chosen else []
    if chosen and not keys:
        return await _listing(request, filters, 422, forms.Refusal(NOTHING_CHOSEN, 422))
    try:
        body = RedriveIn.model_validate({**filters, **({"keys": keys} if chosen else {})})
        done = await _control(request).dead_letters.redrive(body.where(), body.limit)
    except (ValidationError, FaasflowError) as exc:
        refusal = forms.refusal(exc)
        return await _listing(request, filters, refusal.status, refusal)
    return await _listing(request, filters, outcome=done)
