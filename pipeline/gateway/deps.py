"""Dependency aliases, so route signatures read like sentences, and the management
routers' common part."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Security

from pipeline.control import ControlPlane
from pipeline.gateway.answers import errors
from pipeline.gateway.auth import BASIC, BEARER, MANAGEMENT_PREFIX
from pipeline.gateway.schemas import NAME
from pipeline.receiver import WebhookReceiver


# async, as every dependency here: FastAPI runs a plain ``def`` one on a worker thread, a
# thread hop per request for a getattr
async def _control(request: Request) -> ControlPlane:
    control: ControlPlane = request.app.state.control
    return control


async def _receiver(request: Request) -> WebhookReceiver:
    receiver: WebhookReceiver = request.app.state.receiver
    return receiver


Control = Annotated[ControlPlane, Depends(_control)]
Receiver = Annotated[WebhookReceiver, Depends(_receiver)]
Name = Annotated[str, Path(pattern=NAME, description="1-100 of a-z 0-9 . _ -, starting "
                                                      "with a letter or digit")]
Authenticated = [Security(BEARER), Security(BASIC)]  # checked by auth.ManagementAuth


def management(prefix: str, tag: str) -> APIRouter:
    """A router of the management API: under ``/v1/``, where ``ManagementAuth`` checks
    credentials, and declaring so in OpenAPI (the schemes and the 401)."""
    if not prefix.startswith(MANAGEMENT_PREFIX):
        raise ValueError(f"management routes live under {MANAGEMENT_PREFIX}, not {prefix}")
    return APIRouter(prefix=prefix, tags=[tag], dependencies=Authenticated,
                     responses=errors(401))
