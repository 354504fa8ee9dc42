"""Standard Webhooks (standardwebhooks.com), the scheme Svix, Convoy and others send.

    webhook-id: msg_2KWPBgLlAfxdpx2AI54pPJ85f4W
    webhook-timestamp: 1674087231
    webhook-signature: v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4= v1,…

Each ``v1,`` signature is base64 HMAC-SHA256 over ``id.timestamp.body``, keyed by the
base64-decoded part of a ``whsec_…`` secret; a sender rotating its secret sends one
signature per secret. The ``webhook-id`` is the delivery id: retries keep it.

Why not ``standardwebhooks.Webhook.verify``: it decodes the body as UTF-8 (a binary
body raises ``UnicodeDecodeError``, and ``sign`` takes a ``str``), reads the wall clock
itself, holds one secret per instance, raises ``ValueError`` or ``binascii.Error`` on a
malformed signature header, and reports missing headers, stale timestamps and bad
signatures as one exception type. The signing rule is six lines; the tests hold this
module to the library: what it signs verifies here, and what this signs verifies there.
"""

from __future__ import annotations

import base64
import binascii
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

PREFIX = "whsec_"
MIN_KEY_BYTES, MAX_KEY_BYTES = 24, 64  # the specification's bounds
ID, TIMESTAMP, SIGNATURE = "webhook-id", "webhook-timestamp", "webhook-signature"


def key_of(secret: str) -> bytes:
    """The HMAC key: the base64 after ``whsec_`` (padding optional, as senders vary)."""
    encoded = secret.removeprefix(PREFIX)
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)


def signature(key: bytes, delivery_id: str, timestamp: int, body: bytes) -> bytes:
    return hmac_sha256(key, f"{delivery_id}.{timestamp}.".encode() + body)


def _given(header: str) -> list[bytes]:
    """The decodable ``v1`` signatures of a ``webhook-signature`` header; other versions
    (and entries this receiver cannot read) are skipped, as the specification asks."""
    found = []
    for entry in header.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except binascii.Error:
            continue
    return found


class StandardWebhooks:
    scheme = Scheme.STANDARD
    signed = True

    def verify(self, headers: Headers, body: bytes, secrets: Sequence[str], now: float) -> str:
        delivery_id = require(headers, ID)
        raw_timestamp = require(headers, TIMESTAMP)
        given = _given(require(headers, SIGNATURE))
        timestamp = parse_timestamp(raw_timestamp, TIMESTAMP)
        if not given:
            raise malformed(SIGNATURE, "expected space-separated v1,<base64> signatures")
        expected = (signature(key_of(s), delivery_id, timestamp, body) for s in secrets)
        if not any_matches(expected, given):
            raise bad_signature(SIGNATURE)
        check_timestamp(timestamp, now, TIMESTAMP)
        return delivery_id

    def sign(self, body: bytes, secret: str, now: float, delivery_id: str) -> dict[str, str]:
        timestamp = int(now)
        mac = signature(key_of(secret), delivery_id, timestamp, body)
        return {ID: delivery_id, TIMESTAMP: str(timestamp),
                SIGNATURE: f"v1,{base64.b64encode(mac).decode()}"}

    def new_secret(self) -> str:
        return PREFIX + base64.b64encode(random.token_bytes(32)).decode()

    def check_secret(self, secret: str) -> str:
        try:
            key = key_of(secret)
        except (binascii.Error, ValueError):
            raise InvalidRequest("a standard-webhooks secret is whsec_ and base64") from None
        if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
            raise InvalidRequest(
                f"a standard-webhooks secret holds {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes of "
                f"key, this one {len(key)}"
            )
        return secret
