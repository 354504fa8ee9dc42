"""``none``: no signature, every delivery is accepted. The default for a webhook created
without a scheme, so a plain ``curl`` (or ``faasflow webhook send``) can deliver; the
webhook's unguessable id in its URL is then the only credential."""

from __future__ import annotations

from collections.abc import Sequence

from connectors.webhooks.base import Headers, Scheme
from pipeline.errors import InvalidRequest


class Unsigned:
    scheme = Scheme.NONE
    signed = False

    def verify(
        self, headers: Headers, body: bytes, secrets: Sequence[str], now: float
    ) -> str | None:
        return None

    def sign(self, body: bytes, secret: str, now: float, delivery_id: str) -> dict[str, str]:
        return {}

    def new_secret(self) -> str:
        raise InvalidRequest("a webhook with scheme none has no secret")

    def check_secret(self, secret: str) -> str:
        raise InvalidRequest("a webhook with scheme none takes no secret")
