"""Dependency aliases, so route signatures read like sentences."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pipeline.control import ControlPlane
from pipeline.gateway.auth import require_token


def _control(request: Request) -> ControlPlane:
    control: ControlPlane = request.app.state.control
    return control


Control = Annotated[ControlPlane, Depends(_control)]
Authenticated = [Depends(require_token)]
