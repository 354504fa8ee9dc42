from __future__ import annotations

from typing import Any

from fastapi import Response

from pipeline.gateway.answers import ConnectorOut, error, errors, links
from pipeline.gateway.deps import Control, management
from pipeline.gateway.schemas import ConnectorIn

router = management("/v1/connectors", "connectors")
NEXT = links("name", "$response.body#/name", "get_connector", "delete_connector")


@router.post("", status_code=201, summary="Add a connector (Ethereum, HTTP poll…)",
             response_model=ConnectorOut,
             responses={200: {"model": ConnectorOut, "description": "The same one exists",
                              **NEXT},
                        201: NEXT,
                        409: error("A connector of that name exists with another definition."),
                        **errors(400, 413, 422, 503)})
async def add_connector(body: ConnectorIn, control: Control, response: Response) -> dict[str, Any]:
    """201 when new; 200 when the same definition exists; 409 when the name is taken."""
    spec, created = await control.put_connector(body.name, body.kind, body.source, body.config)
    response.status_code = 201 if created else 200
    return await control.connector(spec.name)


@router.get("", summary="List connectors, each with its state",
            response_model=list[ConnectorOut])
async def list_connectors(control: Control) -> list[dict[str, Any]]:
    return control.connectors()


@router.get("/{name}", summary="Get a connector and its state", response_model=ConnectorOut,
            responses=errors(404, 422))
async def get_connector(name: str, control: Control) -> dict[str, Any]:
    """``state``: pending, starting, running, retrying or failed (failed stays until the
    connector is deleted and added again); ``error`` and ``error_at``: its last error."""
    return await control.connector(name)


@router.delete("/{name}", status_code=204, summary="Remove a connector",
               responses=errors(404, 422, 503))
async def delete_connector(name: str, control: Control) -> None:
    await control.delete_connector(name)
