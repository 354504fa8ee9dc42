from __future__ import annotations

from typing import Any

from fastapi import Response

from pipeline.gateway.answers import SecretOut, error, errors, links
from pipeline.gateway.deps import Control, Name, management
from pipeline.gateway.schemas import SecretIn

router = management("/v1/secrets", "secrets")
NEXT = links("name", "$response.body#/name", "delete_secret")


@router.put("/{name}", summary="Create or replace a secret (its value is never shown)",
            response_model=SecretOut,
            responses={200: NEXT, 201: {"model": SecretOut, "description": "Created", **NEXT},
                       **errors(400, 413, 422, 503)})
async def put_secret(name: Name, body: SecretIn, control: Control,
                     response: Response) -> dict[str, Any]:
    secret, created = await control.put_secret(name, body.value)
    response.status_code = 201 if created else 200
    return secret.public()


@router.get("", summary="List secrets (names only)", response_model=list[SecretOut])
async def list_secrets(control: Control) -> list[dict[str, Any]]:
    return [s.public() for s in sorted(control.registry.secrets.values(), key=lambda s: s.name)]


@router.delete("/{name}", status_code=204, summary="Delete a secret no function uses",
               responses={409: error("A function uses the secret."), **errors(404, 422, 503)})
async def delete_secret(name: str, control: Control) -> None:
    await control.delete_secret(name)
