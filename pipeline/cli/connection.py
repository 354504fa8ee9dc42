"""Where a command finds the gateway, and the token it sends, without the settings model.

A command that only talks to the gateway needs four settings: ``gateway.host``,
``gateway.port``, ``gateway.auth_token`` and ``state_dir`` (where the token is kept).
Building ``Settings`` to read them imports pydantic-settings and validates every model:
more than the rest of ``faasflow fn list`` together (``python -m bench cli_startup``). So
they are read here from the environment as the model reads them (``FAASFLOW_`` prefix, in
any case, ``FAASFLOW_GATEWAY_PORT`` for ``gateway.port``), when they are set plainly;
anything else (the nested JSON form, a value the model would refuse, a name given in two
cases) is left to the model, with its validation and its errors.
``tests/unit/test_cli_connection.py`` holds both to the same answers.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.locations import TOKEN_FILE, local_url, stored, xdg

HOST, PORT, TOKEN, STATE_DIR = (
    "faasflow_gateway_host", "faasflow_gateway_port", "faasflow_gateway_auth_token",
    "faasflow_state_dir")
DEFAULTS = {HOST: "127.0.0.1", PORT: "8080"}  # GatewaySettings' defaults
TOKEN_MIN_LENGTH = 16  # GatewaySettings.auth_token's


@dataclass(frozen=True, slots=True)
class Connection:
    url: str
    token: str | None


def connection() -> Connection | None:
    """The gateway's URL and the token, from the environment (and the token file), or None
    when only ``Settings`` can tell."""
    found: dict[str, str] = {}
    for name, value in os.environ.items():
        key = name.lower()
        if key == "faasflow_gateway" or (key in (HOST, PORT, TOKEN, STATE_DIR)
                                         and key in found):
            return None  # the whole model as JSON, or one setting spelt twice
        if key in (HOST, PORT, TOKEN, STATE_DIR):
            found[key] = value
    settings = DEFAULTS | found
    token = settings.get(TOKEN)
    if (not settings[HOST] or not re.fullmatch(r"[0-9]+", settings[PORT])
            or (token is not None and len(token) < TOKEN_MIN_LENGTH)
            or settings.get(STATE_DIR) == ""):
        return None
    if token is None:
        state_dir = (Path(settings[STATE_DIR]) if STATE_DIR in settings
                     else xdg("XDG_STATE_HOME", ".local/state"))
        token = stored(state_dir / TOKEN_FILE)
    return Connection(local_url(settings[HOST], int(settings[PORT])), token)
