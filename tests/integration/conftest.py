"""Fixtures over the real parts: a Kafka broker in a container (the image compose/ builds),
the Docker Engine, and faasflow's own gateway and worker processes.

Every test gets its own topic prefix, hence its own topics and consumer group.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
import pytest

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # its image cannot be pulled here
# Warm runtimes' sockets under a short root that every platform of the run shares (each
# process in a directory of its own): below pytest's temporary directories a socket's path
# can pass the 107 bytes a unix socket's path may have.
os.environ.setdefault("FAASFLOW_RUNTIME_SOCKET_DIR", "/tmp/faasflow-tests/warm")

from testcontainers.core.container import DockerContainer

from pipeline.cli.processes import kafka_version
from pipeline.settings import Settings
from tests.integration.platform import Platform, wait_for_kafka

FUNCTIONS = Path(__file__).parent / "functions"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class KafkaContainer:
    """A single-node KRaft broker from the locally built ``faasflow/kafka`` image.

    The broker listens on the same port inside and outside the container, so the
    address it advertises works from the host.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.container = (
            DockerContainer(f"faasflow/kafka:{kafka_version()}")
            .with_env("KAFKA_PORT", str(self.port))
            .with_env("KAFKA_HEAP_MB", "384")
            .with_env("KAFKA_MESSAGE_MAX_BYTES", str(Settings().kafka.message_bytes))
            .with_bind_ports(self.port, self.port)
        )

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> KafkaContainer:
        self.container.start()
        wait_for_kafka(self.bootstrap, timeout_s=90)
        return self

    def stop(self) -> None:
        self.container.stop()


@pytest.fixture(scope="session")
def kafka() -> Iterator[KafkaContainer]:
    broker = KafkaContainer().start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def client() -> Iterator[docker.DockerClient]:
    """The Docker Engine, for tests that look at or break containers themselves."""
    engine = docker.from_env()
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def test_images() -> dict[str, str]:
    """Small misbehaving functions, built locally FROM the base image (nothing is pulled)."""
    client = docker.from_env()
    tags = {}
    for folder in sorted(FUNCTIONS.iterdir()):
        tag = f"faasflow-test/{folder.name}:latest"
        client.images.build(path=str(folder), tag=tag, rm=True)
        tags[folder.name] = tag
    client.close()
    return tags


@contextmanager
def started(kafka: KafkaContainer, state_dir: Path, **env: str) -> Iterator[Platform]:
    """A worker and a gateway of their own (topics of their own) on the shared broker, with
    ``env`` added to their settings; stopped after, or when one fails to start."""
    running = Platform(kafka.bootstrap, f"t{uuid.uuid4().hex[:10]}", free_port(), state_dir,
                       **env)
    try:
        running.start_worker()
        running.start_gateway()
        yield running
    finally:
        running.stop()


@pytest.fixture
def platform(kafka: KafkaContainer, tmp_path: Path) -> Iterator[Platform]:
    """A gateway and a worker of their own, on the shared broker."""
    with started(kafka, tmp_path) as running:
        yield running


@pytest.fixture(scope="module")
def gateway(kafka: KafkaContainer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A gateway alone (no worker), shared by a module's tests of the HTTP edge."""
    running = Platform(kafka.bootstrap, f"g{uuid.uuid4().hex[:10]}", free_port(),
                       tmp_path_factory.mktemp("gateway"))
    running.start_gateway()
    yield running
    running.stop()


@pytest.fixture
def unique() -> str:
    """A name no other test uses (sources and functions are per test)."""
    return f"n{uuid.uuid4().hex[:8]}"
