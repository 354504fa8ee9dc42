"""Dependency aliases, so route signatures read like sentences."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pipeline.control import ControlPlane
from pipeline.gateway.auth import require_token
from pipeline.receiver import WebhookReceiver


def _control(request: Request) -> ControlPlane:
    control: ControlPlane = request.app.state.control
    return control


def _receiver(request: Request) -> WebhookReceiver:
    receiver: WebhookReceiver = request.app.state.receiver
    return receiver


Control = Annotated[ControlPlane, Depends(_control)]
Receiver = Annotated[WebhookReceiver, Depends(_receiver)]
Authenticated = [Depends(require_token)]
