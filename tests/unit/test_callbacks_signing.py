"""Callbacks are signed with the platform secret, and the reference verifier agrees."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import standardwebhooks

from pipeline.callbacks.signing import message_id, platform_secret, signed_headers
from pipeline.settings import CallbackSettings, Settings

BODY = '{"invocation_id":"i1","status":"succeeded","output":"é"}'.encode()


def test_a_signed_callback_verifies_with_the_standardwebhooks_library(tmp_path: Path) -> None:
    secret = platform_secret(Settings(state_dir=tmp_path))
    headers = signed_headers(BODY, secret, message_id("i1", "callback"), time.time())

    assert standardwebhooks.Webhook(secret).verify(BODY, headers) == {
        "invocation_id": "i1", "status": "succeeded", "output": "é"}


def test_a_tampered_body_does_not_verify(tmp_path: Path) -> None:
    secret = platform_secret(Settings(state_dir=tmp_path))
    headers = signed_headers(BODY, secret, "msg_1", time.time())

    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(BODY.replace(b"i1", b"i2"), headers)


def test_the_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = platform_secret(Settings(state_dir=tmp_path))

    assert first.startswith("whsec_")
    assert platform_secret(Settings(state_dir=tmp_path)) == first
    assert Settings(state_dir=tmp_path).signing_secret() == first
    assert (tmp_path / "callback-secret").stat().st_mode & 0o777 == 0o600


def test_a_configured_secret_wins(tmp_path: Path) -> None:
    given = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    settings = Settings(state_dir=tmp_path, callbacks=CallbackSettings(signing_secret=given))

    assert platform_secret(settings) == given
    assert not (tmp_path / "callback-secret").exists()


def test_the_message_id_is_stable_per_invocation_and_target() -> None:
    assert message_id("i1", "callback") == message_id("i1", "callback")
    assert len({message_id("i1", "callback"), message_id("i1", "sink_1"),
                message_id("i2", "callback")}) == 3
