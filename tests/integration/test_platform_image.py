"""The ``faasflow/platform`` image (compose/platform, built by compose/images.sh): its CLI, its
code and dependencies, and its roles run as a deployment runs them — a broker and a gateway
that turns healthy and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from importlib import metadata

import docker
import pytest
from docker.models.containers import Container

pytestmark = pytest.mark.timeout(120)

IMAGE = "faasflow/platform:latest"
RUNTIME_DEPENDENCIES = [
    "faust-streaming", "aiokafka", "docker", "fastapi", "uvicorn", "pydantic",
    "pydantic-settings", "typer", "rich", "prometheus-client", "httpx", "web3", "orjson",
    "uvloop", "httptools", "tenacity",
]


def run(client: docker.DockerClient, *command: str) -> str:
    output: bytes = client.containers.run(IMAGE, list(command), remove=True, stderr=True)
    return output.decode()


def test_the_image_is_built(client: docker.DockerClient) -> None:
    image = client.images.get(IMAGE)

    assert image.labels.get("faasflow.recipe"), "not built by compose/images.sh"
    config = image.attrs["Config"]
    assert config["Entrypoint"] == ["tini", "--", "/opt/faasflow/entrypoint.sh"]
    assert "FAASFLOW_GATEWAY_HOST=0.0.0.0" in config["Env"]


def test_any_other_command_is_the_cli(client: docker.DockerClient) -> None:
    output = run(client, "--help")

    assert "Usage: faasflow" in output
    assert "gateway" in output
    assert "worker" in output


def test_the_code_imports_and_finds_the_runtime_shim(client: docker.DockerClient) -> None:
    probe = (
        "import json, pipeline.worker.app, pipeline.gateway.app, connectors\n"
        "from pipeline.runtime import shim  # loads the shim file on import\n"
        "assert callable(shim.decode_input)\n"
        "print(json.dumps({'shim': str(shim.SHIM_DIR / 'runtime.py'),\n"
        "                  'exists': (shim.SHIM_DIR / 'runtime.py').is_file(),\n"
        "                  'pipeline': pipeline.__file__}))\n"
    )

    found = json.loads(run(client, "python", "-c", probe).splitlines()[-1])

    assert found == {"shim": "/opt/faasflow/app/functions/runtime/python/runtime.py",
                     "exists": True, "pipeline": "/opt/faasflow/app/pipeline/__init__.py"}


def test_the_dependencies_are_the_tested_versions(client: docker.DockerClient) -> None:
    probe = ("import json, sys; from importlib import metadata\n"
             "print(json.dumps({n: metadata.version(n) for n in sys.argv[1:]}))")

    found = json.loads(run(client, "python", "-c", probe, *RUNTIME_DEPENDENCIES))

    assert found == {name: metadata.version(name) for name in RUNTIME_DEPENDENCIES}


@pytest.fixture
def deployment(client: docker.DockerClient) -> Iterator[dict[str, Container]]:
    """A broker and a gateway of the image on a network of their own, as a stack runs them."""
    run_id = uuid.uuid4().hex[:8]
    network = client.networks.create(f"faasflow-platform-{run_id}", driver="bridge")
    state = client.volumes.create(f"faasflow-platform-{run_id}")
    started: dict[str, Container] = {}
    try:
        started["broker"] = client.containers.run(
            IMAGE, ["broker"], name=f"faasflow-platform-{run_id}-kafka", detach=True,
            network=network.name, environment={"KAFKA_ADVERTISE_HOST": f"faasflow-platform-"
                                               f"{run_id}-kafka", "KAFKA_HEAP_MB": "256"})
        started["gateway"] = client.containers.run(
            IMAGE, ["gateway"], name=f"faasflow-platform-{run_id}-gateway", detach=True,
            network=network.name,
            environment={"FAASFLOW_KAFKA_BOOTSTRAP": f"faasflow-platform-{run_id}-kafka:9092",
                         "FAASFLOW_GATEWAY_PROCESSES": "2"},
            volumes={"/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
                     # warm containers' sockets must be on a volume the engine can mount
                     state.name: {"bind": "/var/lib/faasflow", "mode": "rw"}})
        yield started
    finally:
        for container in started.values():
            container.remove(force=True)
        state.remove(force=True)
        network.remove()


def health(container: Container) -> str:
    container.reload()
    return str(container.attrs["State"].get("Health", {}).get("Status"))


def test_a_gateway_turns_healthy_and_stops_cleanly(deployment: dict[str, Container]) -> None:
    gateway = deployment["gateway"]
    deadline = time.monotonic() + 75
    while health(gateway) != "healthy" or health(deployment["broker"]) != "healthy":
        assert gateway.status != "exited", gateway.logs()[-2000:].decode()
        assert time.monotonic() < deadline, gateway.logs()[-2000:].decode()
        time.sleep(1)

    started = time.monotonic()
    gateway.stop(timeout=20)  # SIGTERM, through tini, to the gateway's own process

    gateway.reload()
    assert gateway.attrs["State"]["ExitCode"] == 0, gateway.logs()[-2000:].decode()
    assert time.monotonic() - started < 15
    assert b"Application shutdown complete" in gateway.logs()
