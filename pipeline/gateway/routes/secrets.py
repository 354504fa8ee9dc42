from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from pipeline.gateway.deps import Authenticated, Control
from pipeline.gateway.schemas import SecretIn

router = APIRouter(prefix="/v1/secrets", tags=["secrets"], dependencies=Authenticated)


@router.put("/{name}", summary="Create or replace a secret (its value is never shown)")
async def put_secret(name: str, body: SecretIn, control: Control,
                     response: Response) -> dict[str, Any]:
    secret, created = await control.put_secret(name, body.value)
    response.status_code = 201 if created else 200
    return secret.public()


@router.get("", summary="List secrets (names only)")
async def list_secrets(control: Control) -> list[dict[str, Any]]:
    return [s.public() for s in sorted(control.registry.secrets.values(), key=lambda s: s.name)]


@router.delete("/{name}", status_code=204, summary="Delete a secret no function uses")
async def delete_secret(name: str, control: Control) -> None:
    await control.delete_secret(name)
