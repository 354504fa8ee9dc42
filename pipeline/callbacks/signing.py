"""Signing callbacks with the Standard Webhooks scheme, under one per-platform secret.

The scheme is the one ``connectors.webhooks.standard`` verifies on inbound webhooks; its
``sign`` is reused here, so one module holds the rule both ways (and the unit tests hold
that module to the ``standardwebhooks`` reference library). A receiver verifies with the
``whsec_…`` secret ``faasflow status`` shows, and dedupes on ``webhook-id``: one id per
(invocation, target), the same on every retry and after a worker restart.
"""

from __future__ import annotations

import uuid

from connectors.webhooks.standard import StandardWebhooks
from pipeline.settings import Settings

SCHEME = StandardWebhooks()
_MESSAGE_NAMESPACE = uuid.UUID("5b0e7f3a-8c21-5d94-a6e3-1f7c2b9d4e08")


def platform_secret(settings: Settings) -> str:
    """The platform's signing secret, generated once (gateway and workers share it)."""
    secret = settings.signing_secret(generate=SCHEME.new_secret)
    assert secret is not None  # generated when missing
    return SCHEME.check_secret(secret)


def message_id(invocation_id: str, target_id: str) -> str:
    """The ``webhook-id`` of the deliveries of one invocation's Result to one target."""
    return "msg_" + uuid.uuid5(_MESSAGE_NAMESPACE, f"{invocation_id}/{target_id}").hex


def signed_headers(body: bytes, secret: str, message: str, now: float) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` for one attempt."""
    return SCHEME.sign(body, secret, now, message)
