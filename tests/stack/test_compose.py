"""The stack's file without a Swarm: Debian's docker-compose runs compose/stack.yml on one
machine, and the hello-world goes through a webhook as on the Swarm. It runs before the
Swarm stack of ``test_stack`` is deployed (they would share ports 8080 and 19092-19094)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.stack.conftest import URL, compose

pytestmark = [pytest.mark.stack, pytest.mark.timeout(600)]


@pytest.fixture
def composed(tmp_path: Path) -> Iterator[httpx.Client]:
    token, secret = tmp_path / "token", tmp_path / "callback-secret"
    token.write_text("compose-token-0123456789\n")
    secret.write_text("whsec_" + "A" * 32 + "\n")
    env = {**os.environ, "FAASFLOW_TOKEN_FILE": str(token),
           "FAASFLOW_CALLBACK_SECRET_FILE": str(secret)}
    try:
        up = compose(env, "up", "-d")
        assert up.returncode == 0, up.stderr
        with httpx.Client(base_url=URL, timeout=60, headers={
                "Authorization": "Bearer compose-token-0123456789"}) as client:
            deadline = time.monotonic() + 240
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, compose(env, "ps").stdout
                time.sleep(2)
            yield client
    finally:
        down = compose(env, "down", "--volumes", "--timeout", "30")
        assert down.returncode == 0, down.stderr


def test_docker_compose_runs_the_stack_and_its_hello_world(composed: httpx.Client) -> None:
    assert composed.put("/v1/functions/hello",
                        json={"image": "faasflow/hello:latest"}).status_code == 201
    assert composed.post("/v1/subscriptions",
                         json={"function": "hello", "source": "hello"}).status_code == 201
    hook = composed.post("/v1/webhooks", json={"name": "hello", "source": "hello"}).json()

    sent = composed.post(hook["url"], content=b"Compose")

    assert sent.status_code == 202, sent.text
    found = composed.get("/v1/invocations", params={"event_id": sent.json()["event_id"],
                                                    "wait": 60}, timeout=90)
    assert found.status_code == 200, found.text
    assert [(r["status"], r["output"]) for r in found.json()] == [
        ("succeeded", "Hello, Compose!\n")]
