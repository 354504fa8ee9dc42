"""The stack under test: compose/stack.yml deployed on this machine's Docker Swarm by
``scripts/stack.sh`` (``make stack``), once for the session, and removed after it.

Its own name and state directory, so a stack or a ``faasflow up`` of the developer's own is
not touched; the machine is left as it was (the Swarm too, if the script made it).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from pipeline.runtime.engine import Engine
from tests.integration.platform import REPO

NAME = "fftest"
COMPOSED = "fftestc"  # test_compose's project
URL = "http://127.0.0.1:8080"
BOOTSTRAP = "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"
FULL = os.environ.get("FAASFLOW_STACK_LOAD") == "full"


@dataclass
class Stack:
    name: str
    env: dict[str, str]
    api: httpx.Client
    anonymous: httpx.Client
    engine: docker.DockerClient

    @property
    def token(self) -> str:
        return (Path(self.env["FAASFLOW_STATE_DIR"]) / "token").read_text().strip()

    def service(self, role: str) -> Any:
        return self.engine.services.get(f"{self.name}_{role}")

    def containers(self, role: str) -> list[Any]:
        """The running containers of a service, oldest first."""
        found = self.engine.containers.list(filters={
            "label": f"com.docker.swarm.service.name={self.name}_{role}",
            "status": "running"})
        return sorted(found, key=lambda c: c.attrs["Created"])

    def scale(self, role: str, replicas: int, timeout_s: float = 180) -> None:
        """Scale a service as the autoscaler does, and wait until that many of its
        containers run (and only that many: the ones removed are gone)."""
        with closing(Engine()) as engine:
            engine.scale_service(f"{self.name}_{role}", replicas)
        deadline = time.monotonic() + timeout_s
        while len(self.containers(role)) != replicas:
            assert time.monotonic() < deadline, f"{role}: not {replicas} running"
            time.sleep(1)

    def deploy(self, name: str, **fields: Any) -> dict[str, Any]:
        response = self.api.put(f"/v1/functions/{name}", json=fields)
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    def webhook(self, source: str) -> dict[str, Any]:
        response = self.api.post("/v1/webhooks", json={"name": source, "source": source})
        assert response.status_code == 201, response.text
        return dict(response.json())

    def subscribe(self, function: str, source: str) -> None:
        response = self.api.post("/v1/subscriptions",
                                 json={"function": function, "source": source})
        assert response.status_code in (200, 201), response.text


def stack_script(action: str, env: dict[str, str]) -> None:
    done = subprocess.run(["bash", str(REPO / "scripts" / "stack.sh"), action], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"stack.sh {action}:\n{done.stdout}\n{done.stderr}"


def compose(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """docker-compose on compose/stack.yml, as the project ``COMPOSED``."""
    return subprocess.run(["docker-compose", "-p", COMPOSED, "-f",
                           str(REPO / "compose" / "stack.yml"), *args],
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="session", autouse=True)
def no_leftovers(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A run cut off (killed, its machine stopped) leaves its stack deployed: its ports and
    secrets made the next run's deploy fail (CI: port 8080 already allocated)."""
    state = tmp_path_factory.mktemp("leftovers-state")
    env = {**os.environ, "FAASFLOW_STACK": NAME, "FAASFLOW_STATE_DIR": str(state)}
    stack_script("down", env)
    removed = compose(env, "down", "--volumes", "--timeout", "10")
    assert removed.returncode == 0, removed.stderr


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("stack-state")
    env = {**os.environ, "FAASFLOW_STACK": NAME, "FAASFLOW_STATE_DIR": str(state),
           # the autoscaler test's burst is small: a low target makes it scale
           "FAASFLOW_AUTOSCALE_TARGET_LAG": "300", "FAASFLOW_AUTOSCALE_SCALE_DOWN_AFTER": "20"}
    try:
        stack_script("up", env)
        token = (state / "token").read_text().strip()
        with (httpx.Client(base_url=URL, timeout=60,
                           headers={"Authorization": f"Bearer {token}"}) as api,
              httpx.Client(base_url=URL, timeout=60) as anonymous,
              closing(docker.from_env()) as engine):
            yield Stack(NAME, env, api, anonymous, engine)
    finally:
        stack_script("down", env)
