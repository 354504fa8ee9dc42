"""Functions: what is deployed and how it runs; deploy (an image or code) and delete.

Deploying goes through ``FunctionIn`` and ``ControlPlane.put_function``, as
``PUT /v1/functions/{name}`` does; durations come from the results index (the function's
latest invocations), warm containers from this gateway's own pools (each worker keeps
pools of its own, which this process cannot see).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from pipeline.control import ControlPlane
from pipeline.errors import FaasflowError
from pipeline.gateway.schemas import NAME, FunctionIn
from pipeline.gateway.ui import forms
from pipeline.gateway.ui.web import SignedIn, page
from pipeline.index import Query, Row
from pipeline.runtime.runtimes import Runtimes
from pipeline.specs import FunctionSpec, Language, Mode

router = APIRouter(prefix="/ui/functions", include_in_schema=False)

DURATIONS_OF = 200  # latest invocations the percentiles are of
RECENT = 20
SAMPLE_CODE = 'def main(event, context):\n    return {"received": event}\n'
COMMON = ("mode", "timeout_s", "memory_mb")
BAD_NAME = "1-100 of a-z 0-9 . _ -, starting with a letter or digit"


def quantile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile of ``values`` (nearest rank), ``None`` of none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(round(q * len(ordered), 9))  # (0.99 · 100 is 98.99999999999999)
    return ordered[min(max(rank, 1), len(ordered)) - 1]


def deploy_body(form: dict[str, Any]) -> dict[str, Any]:
    """The ``PUT /v1/functions/{name}`` body the deploy form stands for: an image, or a
    runtime and code (the other kind's inputs are ignored)."""
    kind = ("image",) if form.get("kind") == "image" else ("runtime", "code", "main")
    found = forms.body(form, (*kind, *COMMON))
    env = forms.pairs(str(form.get("env", "")))
    return {**found, "env": env} if env else found


def _control(request: Request) -> ControlPlane:
    control: ControlPlane = request.app.state.control
    return control


async def _timings(control: ControlPlane, name: str) -> tuple[list[Row], float | None,
                                                              float | None]:
    rows = (await control.results.page(Query(function=name, limit=DURATIONS_OF))).rows
    durations = [r.duration_s for r in rows if r.duration_s is not None]
    return rows, quantile(durations, 0.5), quantile(durations, 0.99)


def _warm(request: Request) -> dict[str, tuple[int, int]]:
    runtimes: Runtimes = request.app.state.runtimes
    return runtimes.warm.containers()


async def _listing(request: Request, status: int = 200, refusal: forms.Refusal | None = None,
                   form: dict[str, Any] | None = None, **notice: str | None) -> Response:
    control = _control(request)
    warm = _warm(request)
    functions = []
    for spec in sorted(control.registry.functions.values(), key=lambda f: f.name):
        _, p50, p99 = await _timings(control, spec.name)
        functions.append({"spec": spec, "p50": p50, "p99": p99, "warm": warm.get(spec.name)})
    return page(request, "functions.html", status, section="functions", title="Functions",
                functions=functions, refusal=refusal, notice=notice,
                form=form or {"kind": "code", "runtime": "python",
                              "code": SAMPLE_CODE, "main": "main"},
                modes=list(Mode), runtimes=list(Language))


@router.get("", name="ui_functions")
async def functions(request: Request, _: SignedIn, deleted: str | None = None,
                    gone: str | None = None, down: str | None = None) -> Response:
    return await _listing(request, deleted=deleted, gone=gone, down=down)


@router.post("")
async def deploy(request: Request, _: SignedIn) -> Response:
    form = dict(await request.form())
    control = _control(request)
    name = str(form.get("name", "")).strip()
    if not re.fullmatch(NAME, name):
        return await _listing(request, 422, forms.Refusal(f"name: {BAD_NAME}", 422,
                                                          {"name": BAD_NAME}), form)
    try:
        body = FunctionIn.model_validate(deploy_body(form))
        spec = await control.put_function(body.draft(name, control.settings.runtime))
    except (ValidationError, FaasflowError) as exc:
        refusal = forms.refusal(exc)
        return await _listing(request, refusal.status, refusal, form)
    return forms.told(f"/ui/functions/{quote(spec.name)}")


@router.get("/{name}", name="ui_function")
async def function(request: Request, name: str, _: SignedIn) -> Response:
    control = _control(request)
    rows, p50, p99 = await _timings(control, name)
    spec: FunctionSpec | None
    try:
        spec = await control.found(control.registry.function, name)
    except FaasflowError as exc:
        refusal = forms.refusal(exc)
        if not rows or refusal.banner:
            return page(request, "functions_missing.html", refusal.status, section="functions",
                        title=name, name=name, refusal=refusal)
        spec = None  # deleted, its history still readable
    return page(request, "functions_detail.html", section="functions", title=name, name=name,
                spec=spec, p50=p50, p99=p99, warm=_warm(request).get(name),
                recent=rows[:RECENT])


@router.get("/{name}/invocations", name="ui_function_invocations")
async def invocations(request: Request, name: str, _: SignedIn) -> Response:
    """The recent invocations table alone, for the function page to refresh."""
    rows = (await _control(request).results.page(Query(function=name, limit=RECENT))).rows
    return page(request, "functions_invocations.html", recent=rows)


@router.post("/{name}/delete")
async def delete(request: Request, name: str, _: SignedIn) -> Response:
    try:
        await _control(request).delete_function(name)
    except FaasflowError as exc:
        outcome = "down" if forms.refusal(exc).banner else "gone"
        return forms.told("/ui/functions", **{outcome: f"function {name}"})
    return forms.told("/ui/functions", deleted=f"function {name}")
