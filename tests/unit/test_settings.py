from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.settings import GatewaySettings, KafkaSettings, Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No FAASFLOW_* from the developer's shell, and no real home directory."""
    for name in list(os.environ):
        if name.startswith("FAASFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def test_defaults_without_environment(tmp_path: Path) -> None:
    settings = Settings()

    assert settings.kafka.bootstrap is None
    assert settings.kafka.topic_prefix == "faasflow"
    assert settings.gateway.port == 8080
    assert settings.state_dir == tmp_path / "xdg-state" / "faasflow"
    assert settings.cache_dir == tmp_path / "xdg-cache" / "faasflow"


def test_nested_kafka_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAASFLOW_KAFKA_BOOTSTRAP", "broker-1:9092,broker-2:9092")
    monkeypatch.setenv("FAASFLOW_KAFKA_TOPIC_PREFIX", "staging")

    settings = Settings()

    assert settings.kafka.bootstrap == "broker-1:9092,broker-2:9092"
    assert settings.kafka.topic_prefix == "staging"
    assert settings.kafka.bootstrap_servers() == "broker-1:9092,broker-2:9092"


def test_gateway_port_and_state_dir_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAASFLOW_GATEWAY_PORT", "9999")
    monkeypatch.setenv("FAASFLOW_STATE_DIR", str(tmp_path / "state"))

    settings = Settings()

    assert settings.gateway.port == 9999
    assert settings.state_dir == tmp_path / "state"
    assert settings.token_file == tmp_path / "state" / "token"


def test_unset_bootstrap_means_the_embedded_broker() -> None:
    assert KafkaSettings(embedded_port=19092).bootstrap_servers() == "127.0.0.1:19092"


def test_gateway_url_for_a_wildcard_host_is_loopback() -> None:
    assert GatewaySettings(host="0.0.0.0", port=8081).url() == "http://127.0.0.1:8081"
    assert GatewaySettings(host="gw.internal", port=80).url() == "http://gw.internal:80"


def test_no_token_and_no_create_is_none(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")

    assert settings.auth_token() is None
    assert not settings.token_file.exists()


def test_created_token_is_private_and_stable(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")

    token = settings.auth_token(create=True)

    assert token
    assert len(token) >= 32
    assert settings.token_file.read_text().strip() == token
    assert stat.S_IMODE(settings.token_file.stat().st_mode) == 0o600
    assert settings.auth_token(create=True) == token
    assert Settings(state_dir=tmp_path / "state").auth_token() == token


def test_each_state_dir_gets_its_own_token(tmp_path: Path) -> None:
    first = Settings(state_dir=tmp_path / "a").auth_token(create=True)
    second = Settings(state_dir=tmp_path / "b").auth_token(create=True)

    assert first != second


def test_configured_token_wins_over_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    Settings(state_dir=tmp_path).auth_token(create=True)
    monkeypatch.setenv("FAASFLOW_GATEWAY_AUTH_TOKEN", "configured-token-from-env")

    settings = Settings(state_dir=tmp_path)

    assert settings.auth_token(create=True) == "configured-token-from-env"
    assert "configured-token-from-env" not in repr(settings)


def test_configured_token_is_not_written_to_disk(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAASFLOW_GATEWAY_AUTH_TOKEN", "configured-token-from-env")

    Settings(state_dir=tmp_path / "state").auth_token(create=True)

    assert not (tmp_path / "state" / "token").exists()


@pytest.mark.parametrize("token", ["", "short"])
def test_a_configured_token_that_is_empty_or_short_is_refused(
    monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    monkeypatch.setenv("FAASFLOW_GATEWAY_AUTH_TOKEN", token)

    with pytest.raises(ValidationError):
        Settings()


def test_an_empty_token_file_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("")

    token = Settings(state_dir=tmp_path).auth_token(create=True)

    assert token
    assert (tmp_path / "token").read_text().strip() == token


def test_the_secrets_can_live_apart_from_the_state(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A stack mounts its Docker secrets read-only at /run/secrets; the state stays writable."""
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text("t" * 32 + "\n")
    monkeypatch.setenv("FAASFLOW_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("FAASFLOW_SECRETS_DIR", str(tmp_path / "secrets"))

    settings = Settings()

    assert settings.auth_token() == "t" * 32
    assert settings.signing_secret_file == tmp_path / "secrets" / "callback-secret"
