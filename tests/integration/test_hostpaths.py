"""A path of a container mapped to the engine's host, for real: a container writes on a
volume and on a bind mount, and the paths ``hostpaths`` maps them to, from the container's
own /proc/self/mountinfo and the engine's inspection, hold what it wrote."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from pipeline.errors import RuntimeUnavailable
from pipeline.runtime.engine import Engine
from pipeline.runtime.hostpaths import container_id, host_path

pytestmark = pytest.mark.integration

IMAGE = "faasflow/base:latest"
SCRIPT = ("mkdir -p /data/sub /bound/sub && echo volume > /data/sub/file "
          "&& echo bind > /bound/sub/file && cat /proc/self/mountinfo")


@pytest.fixture
def engine() -> Iterator[Engine]:
    running = Engine()
    yield running
    running.close()


def test_a_path_in_a_container_maps_to_where_its_mount_is_on_the_host(engine: Engine) -> None:
    client = docker.from_env()
    volume = client.volumes.create(f"faasflow-test-{uuid.uuid4().hex[:8]}")
    bound = Path(tempfile.mkdtemp(prefix="ff-bind-"))
    container = None
    try:
        container = client.containers.run(
            IMAGE, ["sh", "-c", SCRIPT], detach=True,
            volumes={volume.name: {"bind": "/data", "mode": "rw"},
                     str(bound): {"bind": "/bound", "mode": "rw"}})
        assert container.wait(timeout=30)["StatusCode"] == 0
        mountinfo = container.logs(stdout=True, stderr=False).decode()

        assert container_id(mountinfo) == container.id
        on_volume = host_path(Path("/data/sub/file"), engine, mountinfo)
        assert on_volume == Path(volume.attrs["Mountpoint"]) / "sub" / "file"
        assert on_volume.read_text() == "volume\n"
        on_bind = host_path(Path("/bound/sub/file"), engine, mountinfo)
        assert on_bind == bound / "sub" / "file"
        assert on_bind.read_text() == "bind\n"
        with pytest.raises(RuntimeUnavailable, match="/home must be on a volume or a bind"):
            host_path(Path("/home"), engine, mountinfo)
    finally:
        if container is not None:
            container.remove(force=True)
        volume.remove(force=True)
        shutil.rmtree(bound, ignore_errors=True)
        client.close()
