"""The callback targets' circuit breakers: listed, and resumed by hand."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import Field

from pipeline.callbacks.service import GatewayTargets
from pipeline.gateway.answers import Answer, error, errors
from pipeline.gateway.deps import management

router = management("/v1/callbacks", "callbacks")


async def _targets(request: Request) -> GatewayTargets:
    targets: GatewayTargets = request.app.state.callback_targets
    return targets


Targets = Annotated[GatewayTargets, Depends(_targets)]


class TargetOut(Answer):
    id: str
    origin: str = Field(description="scheme://host:port of the callback and sink URLs")
    state: str = Field(description="closed (delivering) or paused")
    failures: int = Field(description="consecutive failures when it was paused")
    paused_at: float | None = Field(description="epoch seconds")
    reason: str = Field(description="its last failure, or what resumed it")


@router.get("/targets", summary="Callback targets and their circuit breakers",
            response_model=list[TargetOut])
async def list_targets(targets: Targets) -> list[dict[str, Any]]:
    """Targets appear once a delivery to them failed."""
    return [state.to_dict() for state in targets.list()]


@router.post("/targets/{ident}/resume", summary="Resume a paused target now",
             response_model=TargetOut,
             responses={404: error("No target by that id."), **errors(422, 503)})
async def resume_target(ident: str, targets: Targets) -> dict[str, Any]:
    return (await targets.resume(ident)).to_dict()
