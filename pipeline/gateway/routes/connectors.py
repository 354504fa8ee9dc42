from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from pipeline.gateway.deps import Authenticated, Control
from pipeline.gateway.schemas import ConnectorIn

router = APIRouter(prefix="/v1/connectors", tags=["connectors"], dependencies=Authenticated)


@router.post("", status_code=201, summary="Add a connector (Ethereum, HTTP poll…)")
async def add_connector(body: ConnectorIn, control: Control, response: Response) -> dict[str, Any]:
    """201 when new; 200 when the same definition exists; 409 when the name is taken."""
    spec, created = await control.put_connector(body.name, body.kind, body.source, body.config)
    response.status_code = 201 if created else 200
    return spec.to_dict()


@router.get("", summary="List connectors, each with its state")
async def list_connectors(control: Control) -> list[dict[str, Any]]:
    return control.connectors()


@router.get("/{name}", summary="Get a connector and its state")
async def get_connector(name: str, control: Control) -> dict[str, Any]:
    """``state``: pending, starting, running, retrying or failed (failed stays until the
    connector is deleted and added again); ``error`` and ``error_at``: its last error."""
    return control.connector(name)


@router.delete("/{name}", status_code=204, summary="Remove a connector")
async def delete_connector(name: str, control: Control) -> None:
    await control.delete_connector(name)
