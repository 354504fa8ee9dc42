"""A refused delivery at the HTTP edge: 401, which check failed, and no token challenge."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from pipeline import errors
from pipeline.gateway.errors import install, status_of


async def test_a_refused_delivery_is_401_and_names_the_check() -> None:
    app = FastAPI()
    install(app)

    @app.post("/hooks/x")
    async def refuse() -> None:
        raise errors.VerificationFailed("stale_timestamp", "the webhook-timestamp is too old")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        response = await client.post("/hooks/x")

    assert response.status_code == 401
    assert response.json() == {"error": {"code": "verification_failed",
                                         "message": "the webhook-timestamp is too old",
                                         "check": "stale_timestamp"}}
    assert "www-authenticate" not in response.headers  # no token would help
    assert status_of(errors.VerificationFailed("bad_signature", "x")) == 401
