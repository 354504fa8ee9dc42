"""Dependency aliases, so route signatures read like sentences."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security

from pipeline.control import ControlPlane
from pipeline.gateway.auth import BASIC, BEARER
from pipeline.receiver import WebhookReceiver


def _control(request: Request) -> ControlPlane:
    control: ControlPlane = request.app.state.control
    return control


def _receiver(request: Request) -> WebhookReceiver:
    receiver: WebhookReceiver = request.app.state.receiver
    return receiver


Control = Annotated[ControlPlane, Depends(_control)]
Receiver = Annotated[WebhookReceiver, Depends(_receiver)]
Authenticated = [Security(BEARER), Security(BASIC)]  # checked by auth.ManagementAuth
