"""``faasflow fn invoke``, the real command in a process of its own (its stdout a pipe), against
a real gateway and worker: what a developer types, and what comes back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import docker

from tests.integration.platform import REPO, TOKEN, Platform

GREETING = b'{"message":"Hello, Ada!"}\n'


def faasflow(platform: Platform, cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO),
           "FAASFLOW_GATEWAY_PORT": platform.url.rsplit(":", 1)[1],
           "FAASFLOW_GATEWAY_AUTH_TOKEN": TOKEN, "FAASFLOW_STATE_DIR": str(platform.state_dir)}
    done = subprocess.run([sys.executable, "-c", "from pipeline.cli.main import app; app()",
                           *args], cwd=cwd, env=env, capture_output=True, timeout=170)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done


def remove_images(repository: str) -> None:
    client = docker.from_env()
    try:
        for image in client.images.list(repository):
            client.images.remove(image.id, force=True)
    finally:
        client.close()


def test_the_python_template_greets_by_name_cold_and_warm(platform: Platform, unique: str,
                                                          tmp_path: Path) -> None:
    name = f"greeter-{unique}"
    faasflow(platform, tmp_path, "fn", "new", name, "--lang", "python")
    try:
        faasflow(platform, tmp_path, "fn", "deploy", name)
        cold = faasflow(platform, tmp_path, "fn", "invoke", name, "--data", '{"name":"Ada"}')
        as_text = faasflow(platform, tmp_path, "fn", "invoke", name, "--data", "Ada",
                           "-H", "text/plain")
        faasflow(platform, tmp_path, "fn", "deploy", name, "--mode", "warm")
        warm = faasflow(platform, tmp_path, "fn", "invoke", name, "--data", '{"name":"Ada"}')
    finally:
        platform.api.delete(f"/v1/functions/{name}")  # its warm containers go
        remove_images(f"faasflow-fn/{name}")

    assert cold.stdout == as_text.stdout == warm.stdout == GREETING


def test_binary_output_to_a_pipe_is_written_as_it_came(platform: Platform, unique: str,
                                                        tmp_path: Path) -> None:
    platform.deploy(unique, "faasflow/echo:latest")
    data = tmp_path / "data.bin"
    data.write_bytes(b"\x89PNG\r\n\xff\x00")

    binary = faasflow(platform, tmp_path, "fn", "invoke", unique, "--data", f"@{data}")
    text = faasflow(platform, tmp_path, "fn", "invoke", unique, "--data", "no newline")

    assert binary.stdout == b"\x89PNG\r\n\xff\x00"
    assert text.stdout == b"no newline\n"
