"""Webhook verification: one module per signature scheme behind one ``Verifier`` port.

    standard  Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature (v1,…)
    github    X-Hub-Signature-256: sha256=<hex> over the body, X-GitHub-Delivery
    stripe    Stripe-Signature: t=…,v1=<hex> over t.body
    none      unsigned (the default)
"""

from __future__ import annotations

from connectors.webhooks.base import Check, Scheme, Verifier, lower_case
from connectors.webhooks.github import GitHub
from connectors.webhooks.standard import StandardWebhooks
from connectors.webhooks.stripe import Stripe
from connectors.webhooks.unsigned import Unsigned
from pipeline.errors import InvalidRequest

VERIFIERS: dict[Scheme, Verifier] = {
    Scheme.STANDARD: StandardWebhooks(),
    Scheme.GITHUB: GitHub(),
    Scheme.STRIPE: Stripe(),
    Scheme.NONE: Unsigned(),
}


def verifier(scheme: str) -> Verifier:
    try:
        return VERIFIERS[Scheme(scheme)]
    except ValueError:
        raise InvalidRequest(
            f"unknown scheme {scheme!r}: choose one of {', '.join(s.value for s in Scheme)}"
        ) from None


__all__ = ["VERIFIERS", "Check", "Scheme", "Verifier", "lower_case", "verifier"]
