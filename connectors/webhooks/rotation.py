"""A webhook's secrets over time: configured at creation, rotated with a grace period.

    secrets = (current, previous until T1, older until T2 …)

Rotation puts a new secret first and gives the one it replaces an expiry ``grace_s``
from now; until then deliveries signed with either verify, so senders can switch over
without dropping any. Expired secrets are dropped at the next rotation; ``active`` never
returns them. All of it is pure: ``now`` is Unix seconds.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

from connectors.webhooks import verifier
from pipeline.errors import InvalidRequest
from pipeline.specs import Webhook, WebhookSecret

HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}")  # an HTTP token


def iso(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).isoformat(timespec="microseconds").replace(
        "+00:00", "Z"
    )


def _expiry(secret: WebhookSecret) -> float:
    if secret.expires_at is None:
        return float("inf")
    return datetime.fromisoformat(secret.expires_at).timestamp()


def _expired(secret: WebhookSecret, now: float) -> bool:
    return _expiry(secret) <= now


def configure(hook: Webhook, scheme: str, secret: str | None,
              delivery_header: str | None) -> Webhook:
    """``hook`` with its scheme, its first secret (generated when not given) and the header
    that names deliveries when the scheme names none; ``InvalidRequest`` when they do not fit."""
    check = verifier(scheme)
    if delivery_header is not None and not HEADER_NAME.fullmatch(delivery_header):
        raise InvalidRequest(f"invalid delivery header name {delivery_header!r}")
    secrets: tuple[WebhookSecret, ...] = ()
    if check.signed:
        value = check.new_secret() if secret is None else check.check_secret(secret)
        secrets = (WebhookSecret(value),)
    elif secret is not None:
        check.check_secret(secret)  # refuses: an unsigned webhook has no secret
    return replace(hook, scheme=check.scheme.value, secrets=secrets,
                   delivery_header=delivery_header.lower() if delivery_header else None)


def rotate(hook: Webhook, secret: str | None, now: float, grace_s: float) -> Webhook:
    """``hook`` with a new current secret; the ones it replaces stay valid for ``grace_s``
    at most (0 revokes them at once, as after a leak)."""
    check = verifier(hook.scheme)
    if not check.signed:
        raise InvalidRequest(f"webhook {hook.id} is unsigned (scheme none): nothing to rotate")
    value = check.new_secret() if secret is None else check.check_secret(secret)
    until = now + grace_s
    kept = [WebhookSecret(s.value, iso(min(until, _expiry(s))))
            for s in hook.secrets if s.value != value]
    return replace(hook, secrets=(WebhookSecret(value), *(s for s in kept if not _expired(s, now))))


def active(hook: Webhook, now: float) -> list[str]:
    """The secrets a delivery may be signed with at ``now``, the current one first."""
    return [s.value for s in hook.secrets if not _expired(s, now)]


def current(hook: Webhook) -> str | None:
    return hook.secrets[0].value if hook.secrets else None
