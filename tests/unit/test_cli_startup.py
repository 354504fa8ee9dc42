"""``faasflow --help`` and ``faasflow fn list`` import only what they run: each in a fresh
interpreter, with the modules it loaded listed afterwards. (How long they take is shown by
``python -m bench cli_startup``, not asserted here.)"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli.groups import GROUPS
from pipeline.cli.processes import REPO

# imported by neither command: the SDKs, the settings model, the platform's own machinery
HEAVY = ("docker", "web3", "httpx", "requests", "aiokafka", "faust", "pydantic_settings",
         "pipeline.settings", "pipeline.index", "pipeline.runtime", "pipeline.records",
         "pipeline.callbacks", "pipeline.cli.supervisor", "pipeline.cli.function_image",
         "connectors", "rich.progress")
MARK = "--- modules ---"
RUN = f"""
import sys
from pipeline.cli.main import app
try:
    app(sys.argv[1:], prog_name="faasflow")
except SystemExit as exit:
    print("exit", exit.code, file=sys.stderr)
print({MARK!r}, *sorted(sys.modules), sep="\\n")
"""


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def faasflow(*args: str, **env: str) -> tuple[str, str, set[str]]:
    """Run ``faasflow ARGS``; its output, errors, and the modules it had loaded."""
    done = subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, text=True,
                          cwd=REPO, timeout=60,
                          env={**os.environ, "COLUMNS": "200", **env})
    output, _, modules = done.stdout.partition(MARK)
    return output, done.stderr, set(modules.split())


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(f"{h}.") for h in HEAVY))


def test_help_lists_every_command_and_imports_nothing_heavy() -> None:
    output, errors, modules = faasflow("--help")

    assert "exit 0" in errors
    listed = {line.split()[1] for line in output.splitlines()
              if line.startswith("│ ") and not line.startswith("│ -")}
    assert listed >= {"up", "down", "status", "gateway", "worker", "subscribe", "logs",
                      *GROUPS}
    assert heavy(modules) == []
    assert not {"pydantic", "http.client"} & modules


def test_fn_list_imports_nothing_heavy(tmp_path: Path) -> None:
    port = closed_port()  # nothing listens there: the request is made, and refused
    _, errors, modules = faasflow("fn", "list", FAASFLOW_GATEWAY_PORT=str(port),
                                       FAASFLOW_STATE_DIR=str(tmp_path))

    assert f"no gateway answers at http://127.0.0.1:{port}" in errors
    assert "exit 1" in errors
    assert heavy(modules) == []
    assert "http.client" in modules


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_each_group_loads_its_commands_when_called(group: str) -> None:
    output, errors, _ = faasflow(group, "--help")

    assert "exit 0" in errors
    assert "Commands" in output
