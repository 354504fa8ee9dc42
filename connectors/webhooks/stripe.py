"""Stripe's scheme, which others copy as "Stripe-style" signatures.

    Stripe-Signature: t=1492774577,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff53…,v0=…

``v1`` is hex HMAC-SHA256 over ``t.body``, keyed by the whole secret (``whsec_…``
included) as UTF-8. Stripe sends one ``v1`` per active secret while one is being rolled;
``v0`` and other schemes are ignored. The header names no delivery: the delivery id is
the ``id`` of a JSON object body (Stripe's event id, kept across retries), when there is one.
"""

from __future__ import annotations

import secrets as random
from collections.abc import Sequence

from connectors.webhooks.base import (
    Headers,
    Scheme,
    any_matches,
    bad_signature,
    check_timestamp,
    hmac_sha256,
    malformed,
    parse_timestamp,
    require,
)
from pipeline.errors import InvalidRequest
from pipeline.records import strict_loads

SIGNATURE = "stripe-signature"
MIN_SECRET = 8


def signature(secret: str, timestamp: int, body: bytes) -> bytes:
    return hmac_sha256(secret.encode(), f"{timestamp}.".encode() + body)


def _parse(header: str) -> tuple[int, list[bytes]]:
    timestamp: int | None = None
    given: list[bytes] = []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t":
            timestamp = parse_timestamp(value, SIGNATURE)
        elif name == "v1":
            try:
                given.append(bytes.fromhex(value))
            except ValueError:
                continue
    if timestamp is None or not given:
        raise malformed(SIGNATURE, "expected t=<timestamp>,v1=<hex>[,v1=<hex>…]")
    return timestamp, given


def event_id(body: bytes) -> str | None:
    """The ``id`` of a JSON object body, if it has a string one."""
    if not body.lstrip().startswith(b"{"):
        return None
    try:
        ident = strict_loads(body).get("id")
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return ident if isinstance(ident, str) and ident else None


class Stripe:
    scheme = Scheme.STRIPE
    signed = True

    def verify(
        self, headers: Headers, body: bytes, secrets: Sequence[str], now: float
    ) -> str | None:
        timestamp, given = _parse(require(headers, SIGNATURE))
        if not any_matches((signature(s, timestamp, body) for s in secrets), given):
            raise bad_signature(SIGNATURE)
        check_timestamp(timestamp, now, SIGNATURE)
        return event_id(body)

    def sign(self, body: bytes, secret: str, now: float, delivery_id: str) -> dict[str, str]:
        timestamp = int(now)
        return {SIGNATURE: f"t={timestamp},v1={signature(secret, timestamp, body).hex()}"}

    def new_secret(self) -> str:
        return "whsec_" + random.token_urlsafe(32)

    def check_secret(self, secret: str) -> str:
        if len(secret) < MIN_SECRET:
            raise InvalidRequest(f"a stripe secret has at least {MIN_SECRET} characters")
        return secret
