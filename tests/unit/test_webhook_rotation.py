"""A webhook's secrets: configured at creation, rotated with a grace period, never shown."""

from __future__ import annotations

import pytest

from connectors.webhooks import VERIFIERS, Scheme
from connectors.webhooks.rotation import active, configure, current, iso, rotate
from pipeline.errors import InvalidRequest
from pipeline.gateway.routes.webhooks import view, with_secret
from pipeline.specs import Webhook, WebhookSecret

from .support import webhook

NOW = 1_700_000_000.0
DAY = 86_400.0


def signed(scheme: Scheme = Scheme.GITHUB, secret: str | None = None) -> Webhook:
    return configure(webhook("wh_1"), scheme.value, secret, None)


def test_a_signed_scheme_gets_a_generated_secret() -> None:
    hook = signed(Scheme.STANDARD)

    assert hook.scheme == "standard"
    (secret,) = hook.secrets
    assert secret.value.startswith("whsec_")
    assert secret.expires_at is None


def test_a_given_secret_is_checked_and_kept() -> None:
    assert current(signed(Scheme.STRIPE, "whsec_given-secret")) == "whsec_given-secret"
    with pytest.raises(InvalidRequest):
        signed(Scheme.STANDARD, "not-whsec-base64")


def test_an_unsigned_webhook_has_no_secret_and_takes_none() -> None:
    hook = configure(webhook("wh_1"), "none", None, None)

    assert (hook.scheme, hook.secrets, current(hook)) == ("none", (), None)
    with pytest.raises(InvalidRequest, match="no secret"):
        configure(webhook("wh_1"), "none", "a-secret-anyway", None)


def test_the_delivery_header_is_a_lower_case_header_name() -> None:
    assert configure(webhook("wh_1"), "none", None, "X-Request-Id").delivery_header == (
        "x-request-id"
    )
    with pytest.raises(InvalidRequest, match="header"):
        configure(webhook("wh_1"), "none", None, "not a header")


def test_rotation_keeps_the_old_secret_for_the_grace_period() -> None:
    hook = signed()
    old = current(hook)

    rotated = rotate(hook, None, NOW, DAY)

    new = current(rotated)
    assert new not in (None, old)
    assert active(rotated, NOW) == [new, old]
    assert active(rotated, NOW + DAY - 1) == [new, old]
    assert active(rotated, NOW + DAY) == [new]
    assert rotated.secrets[1].expires_at == iso(NOW + DAY)


def test_a_rotation_with_no_grace_revokes_every_old_secret_at_once() -> None:
    once = rotate(signed(), None, NOW, DAY)

    twice = rotate(once, "the-new-secret", NOW + 10, 0)

    assert active(twice, NOW + 10) == ["the-new-secret"]
    assert len(twice.secrets) == 1


def test_a_second_rotation_shortens_but_never_extends_older_grace() -> None:
    first = rotate(signed(), None, NOW, 60)
    second = rotate(first, None, NOW + 10, DAY)

    assert len(active(second, NOW + 30)) == 3
    assert len(active(second, NOW + 61)) == 2  # the first secret's grace ended as promised
    assert len(rotate(second, None, NOW + 100, DAY).secrets) == 3  # expired ones are dropped


def test_rotating_to_a_secret_already_held_keeps_one_copy() -> None:
    hook = signed(Scheme.GITHUB, "the-only-secret")

    assert active(rotate(hook, "the-only-secret", NOW, DAY), NOW) == ["the-only-secret"]


def test_an_unsigned_webhook_cannot_be_rotated() -> None:
    with pytest.raises(InvalidRequest, match="nothing to rotate"):
        rotate(webhook("wh_1"), None, NOW, DAY)


def test_rotation_checks_a_given_secret_by_the_scheme() -> None:
    with pytest.raises(InvalidRequest):
        rotate(signed(Scheme.STANDARD), "plain", NOW, DAY)


def test_the_api_view_never_shows_a_secret() -> None:
    hook = rotate(signed(Scheme.STANDARD), None, NOW, DAY)
    secrets = [s.value for s in hook.secrets]

    shown = view(hook)

    assert not any(s in repr(shown) for s in secrets)
    assert shown["secret_hint"] == "…" + secrets[0][-4:]
    assert shown["previous_secrets_valid_until"] == iso(NOW + DAY)
    assert with_secret(hook)["secret"] == secrets[0]
    assert set(with_secret(hook)) - set(shown) == {"secret"}


def test_the_record_keeps_secrets_but_its_repr_does_not() -> None:
    hook = signed(Scheme.STANDARD)

    assert Webhook.from_dict(hook.to_dict()) == hook
    assert current(hook) not in repr(hook)
    assert current(hook) not in repr(hook.secrets[0])


def test_a_record_written_before_schemes_existed_is_unsigned() -> None:
    old = {"id": "wh_1", "name": "n", "source": "s", "created_at": "2025-01-01T00:00:00Z"}

    hook = Webhook.from_dict(old)

    assert (hook.scheme, hook.secrets, hook.delivery_header) == ("none", (), None)
    assert VERIFIERS[Scheme(hook.scheme)].verify({}, b"", [], NOW) is None
    assert WebhookSecret.from_dict({"value": "v"}).expires_at is None
