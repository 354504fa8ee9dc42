"""GitHub's scheme (and Gitea's, Forgejo's and others' that copy it).

    X-Hub-Signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17
    X-GitHub-Delivery: 72d3162e-cc78-11e3-81ab-4c9367dc0958
    X-GitHub-Event: push

The signature is hex HMAC-SHA256 over the raw body, keyed by the secret's UTF-8 bytes.
Nothing is timestamped, so a replay is caught by the delivery id alone: the gateway
publishes each ``X-GitHub-Delivery`` once. GitHub sends one signature; while a secret
is being rotated any unexpired secret of the webhook may match it.
"""

from __future__ import annotations

import secrets as random
from collections.abc import Sequence

from connectors.webhooks.base import (
    Headers,
    Scheme,
    any_matches,
    bad_signature,
    hmac_sha256,
    malformed,
    require,
)
from pipeline.errors import InvalidRequest

SIGNATURE, DELIVERY, EVENT = "x-hub-signature-256", "x-github-delivery", "x-github-event"
MIN_SECRET = 8


class GitHub:
    scheme = Scheme.GITHUB
    signed = True

    def verify(
        self, headers: Headers, body: bytes, secrets: Sequence[str], now: float
    ) -> str | None:
        algorithm, _, hex_mac = require(headers, SIGNATURE).partition("=")
        if algorithm != "sha256":
            raise malformed(SIGNATURE, "expected sha256=<hex>")
        try:
            given = bytes.fromhex(hex_mac)
        except ValueError:
            raise malformed(SIGNATURE, "expected sha256=<hex>") from None
        if not any_matches((hmac_sha256(s.encode(), body) for s in secrets), [given]):
            raise bad_signature(SIGNATURE)
        return headers.get(DELIVERY, "").strip() or None

    def sign(self, body: bytes, secret: str, now: float, delivery_id: str) -> dict[str, str]:
        return {SIGNATURE: "sha256=" + hmac_sha256(secret.encode(), body).hex(),
                DELIVERY: delivery_id}

    def new_secret(self) -> str:
        return random.token_hex(32)

    def check_secret(self, secret: str) -> str:
        if len(secret) < MIN_SECRET:
            raise InvalidRequest(f"a github secret has at least {MIN_SECRET} characters")
        return secret
