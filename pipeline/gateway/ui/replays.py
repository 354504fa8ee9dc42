"""Replays: the list, starting one (a source's range into its functions, or one function,
optionally compared with another), its progress live, cancelling, and a shadow replay's
differing outputs side by side.

Starting goes through ``ReplayIn`` and ``ReplayService.create`` as ``POST /v1/replays``
does; a replay's page shows ``ReplayService.describe``, the ``GET /v1/replays/{id}``
answer, and refreshes its progress every second until the replay has ended.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import JsonValue, ValidationError

from pipeline.errors import FaasflowError, NotFound
from pipeline.gateway.routes.replays import ReplayIn
from pipeline.gateway.ui import forms
from pipeline.gateway.ui.payloads import Shown, shown
from pipeline.gateway.ui.web import SignedIn, page
from pipeline.replays.service import ReplayService

router = APIRouter(prefix="/ui/replays", include_in_schema=False)

FIELDS = ("source", "from", "to", "function", "filter", "compare_with")
START = {"from": "earliest", "to": "latest"}
SHADE = {"running": "running", "done": "ok", "failed": "failed", "cancelled": "pending"}


def _replays(request: Request) -> ReplayService:
    replays: ReplayService = request.app.state.replays
    return replays


def bound(text: str) -> JsonValue:
    """A ``from`` or ``to`` as typed: ``{"0": 12}`` (offsets per partition) is JSON, the
    rest (``earliest``, ``latest``, a time) is text; ``ReplayIn`` and the service check it."""
    text = text.strip()
    if text.startswith("{"):
        try:
            found: JsonValue = json.loads(text)
            return found
        except ValueError:
            pass  # the service says what a bound may be
    return text


def replay_body(form: Mapping[str, Any]) -> dict[str, Any]:
    """The ``POST /v1/replays`` body the form stands for."""
    found = forms.body(form, FIELDS)
    for name in ("from", "to"):
        if name in found:
            found[name] = bound(str(found[name]))
    if "filter" in found:
        found["filter"] = forms.json_object(str(found["filter"]), "filter")
    return found


def percent(progress: Mapping[str, Any]) -> int:
    """How far a replay got: events read of those in its ranges, then its Results final of
    the invocations made (each half of the bar)."""
    total, read = progress["events_total"], progress["events_read"]
    made, final = progress["invocations"], progress.get("results_final") or 0
    reading = read / total if total else 1.0
    finishing = min(final / made, 1.0) if made else (1.0 if reading >= 1 else 0.0)
    return round(50 * reading + 50 * finishing)


def settled(replay: Mapping[str, Any]) -> bool:
    """Nothing more will change: ended, and when done, every Result of it final."""
    if replay["status"] == "running":
        return False
    progress = replay["progress"]
    return replay["status"] != "done" or (progress.get("results_final") or 0) >= progress[
        "invocations"]


def side_by_side(comparison: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The comparison's examples with both outputs as a page shows outputs."""
    def text(output: Any) -> Shown:
        raw = output if isinstance(output, str) else json.dumps(output)
        return shown(raw.encode())

    return [{**example, "shown": text(example["output"]),
             "original_shown": text(example["original_output"])}
            for example in (comparison or {}).get("examples", [])]


async def _listing(request: Request, status: int = 200, form: Mapping[str, Any] | None = None,
                   refusal: forms.Refusal | None = None) -> Response:
    return page(request, "replays.html", status, section="replays", title="Replays",
                replays=_replays(request).list(), form=form or START, refusal=refusal,
                shade=SHADE)


@router.get("", name="ui_replays")
async def replays(request: Request, _: SignedIn) -> Response:
    return await _listing(request)


@router.post("")
async def start(request: Request, _: SignedIn) -> Response:
    form = dict(await request.form())
    try:
        body = ReplayIn.model_validate(replay_body(form))
        created = await _replays(request).create(body.ask())
    except (ValidationError, FaasflowError) as exc:
        refusal = (forms.Refusal(exc.message, 404) if isinstance(exc, NotFound)  # a typo
                   else forms.refusal(exc))
        return await _listing(request, refusal.status, form, refusal)
    return forms.told(f"/ui/replays/{quote(created['id'])}")


async def _described(request: Request, replay_id: str, template: str) -> Response:
    try:
        replay = await _replays(request).describe(replay_id)
    except FaasflowError as exc:
        refusal = forms.refusal(exc)
        return page(request, "replays_missing.html", refusal.status, section="replays",
                    title="Replay", replay_id=replay_id, refusal=refusal)
    return page(request, template, section="replays", title=f"Replay {replay_id}",
                replay=replay, percent=percent(replay["progress"]), settled=settled(replay),
                examples=side_by_side(replay.get("comparison")), shade=SHADE)


@router.get("/{replay_id}", name="ui_replay")
async def replay(request: Request, replay_id: str, _: SignedIn) -> Response:
    return await _described(request, replay_id, "replays_detail.html")


@router.get("/{replay_id}/progress", name="ui_replay_progress")
async def progress(request: Request, replay_id: str, _: SignedIn) -> Response:
    """The progress fragment, polled every second while the replay runs."""
    return await _described(request, replay_id, "replays_progress.html")


@router.post("/{replay_id}/cancel")
async def cancel(request: Request, replay_id: str, _: SignedIn) -> Response:
    try:
        await _replays(request).cancel(replay_id)
    except FaasflowError as exc:
        refusal = forms.refusal(exc)
        return page(request, "replays_missing.html", refusal.status, section="replays",
                    title="Replay", replay_id=replay_id, refusal=refusal)
    return forms.told(f"/ui/replays/{quote(replay_id)}")
