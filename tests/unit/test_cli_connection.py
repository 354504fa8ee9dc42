"""The CLI's quick look-up of the gateway and its token gives what ``Settings`` gives, or
leaves the question to it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.cli.connection import Connection, connection
from pipeline.settings import Settings

TOKEN = "t" * 32


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No FAASFLOW_ variable but those a test sets; state under tmp_path."""
    for name in list(os.environ):
        if name.upper().startswith("FAASFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))


def from_settings() -> Connection:
    settings = Settings()
    return Connection(settings.gateway.url(), settings.auth_token())


PLAIN = [
    {},
    {"FAASFLOW_GATEWAY_PORT": "18100"},
    {"FAASFLOW_GATEWAY_HOST": "0.0.0.0", "FAASFLOW_GATEWAY_PORT": "9000"},
    {"FAASFLOW_GATEWAY_HOST": "::"},
    {"faasflow_gateway_host": "gw.example", "Faasflow_Gateway_Port": "08080"},
    {"FAASFLOW_GATEWAY_AUTH_TOKEN": TOKEN},
    {"FAASFLOW_KAFKA_EMBEDDED_PORT": "19112", "FAASFLOW_LOG_LEVEL": "WARNING"},
]


@pytest.mark.parametrize("env", PLAIN)
def test_plain_environments_read_as_the_settings_read_them(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    assert connection() == from_settings()


@pytest.mark.parametrize("state_dir", [None, "state"])
def test_the_token_comes_from_the_state_directory(
    state_dir: str | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if state_dir is not None:
        monkeypatch.setenv("FAASFLOW_STATE_DIR", str(tmp_path / state_dir))
    assert connection() == from_settings() == Connection("http://127.0.0.1:8080", None)

    Settings().auth_token(create=True)

    found = connection()
    assert found == from_settings()
    assert found is not None
    assert found.token


@pytest.mark.parametrize("env", [
    {"FAASFLOW_GATEWAY": '{"port": 9001}'},
    {"FAASFLOW_GATEWAY_PORT": "9001", "faasflow_gateway_port": "9002"},
])
def test_what_only_the_model_reads_is_left_to_it(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    assert connection() is None


@pytest.mark.parametrize("env", [
    {"FAASFLOW_GATEWAY_PORT": "eighty"},
    {"FAASFLOW_GATEWAY_PORT": ""},
    {"FAASFLOW_GATEWAY_AUTH_TOKEN": "short"},
])
def test_values_the_model_refuses_are_left_to_it_to_refuse(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    assert connection() is None
    with pytest.raises(ValidationError):
        Settings()
