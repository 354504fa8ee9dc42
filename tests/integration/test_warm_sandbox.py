"""A warm container's socket directory is a bounded tmpfs volume: a function cannot write to
the host's disk through it, and nothing of it outlives the container — not even when the
process that started it dies."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pipeline.records import Status
from pipeline.runtime.base import RunRequest
from pipeline.runtime.containers import OWNER
from pipeline.runtime.engine import Engine
from pipeline.runtime.warm import WarmRunner
from pipeline.settings import Settings
from tests.integration.runtime_support import REPO, build_runtime_images, code_function, iter_mounts

pytestmark = pytest.mark.integration

FILL = (
    "import errno, os\n"
    "def main(event, context):\n"
    "    written, error = 0, None\n"
    "    fd = os.open('/run/faasflow/fill', os.O_WRONLY | os.O_CREAT, 0o600)\n"
    "    try:\n"
    "        while written < 100 << 20:\n"
    "            written += os.write(fd, b'x' * 65536)\n"
    "    except OSError as exc:\n"
    "        error = errno.errorcode[exc.errno]\n"
    "    finally:\n"
    "        os.close(fd)\n"
    "    return {'written': written, 'error': error}\n"
)
VOLUME_BYTES = 256 * 1024


@pytest.fixture(scope="module")
def python_runtime() -> str:
    return build_runtime_images()["python"]


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    running = Engine()
    yield running
    running.close()


def tmpfs_mounts() -> dict[str, str]:
    return dict(iter_mounts())


async def test_a_function_cannot_fill_the_host_through_its_socket_directory(
        engine: Engine, python_runtime: str) -> None:
    name = f"fill-{uuid.uuid4().hex[:8]}"
    function = code_function(name, python_runtime, FILL, timeout_s=60)
    runner = WarmRunner(Settings(), lambda function: {}, engine)
    await runner.start()
    try:
        outcome = await runner.run(RunRequest(function=function, invocation_id=uuid.uuid4().hex,
                                              payload=b""))
        assert outcome.status is Status.SUCCEEDED, outcome.error
        result = json.loads(outcome.output)
        (volume,) = engine.volumes({"faasflow.function": name})
        mountpoint = Path(volume["Mountpoint"])
        assert volume["Labels"] == {"faasflow.function": name, "faasflow.mode": "warm",
                                    "faasflow.owner": OWNER}
        assert tmpfs_mounts()[str(mountpoint)] == "tmpfs"  # memory, never the host's disk
        stats = os.statvfs(mountpoint)
        assert stats.f_blocks * stats.f_frsize == VOLUME_BYTES
        assert result == {"written": result["written"], "error": "ENOSPC"}
        assert result["written"] <= VOLUME_BYTES
        assert (mountpoint / "fill").stat().st_size == result["written"]
        again = await runner.run(RunRequest(function=function, invocation_id=uuid.uuid4().hex,
                                            payload=b""))
        assert again.status is Status.SUCCEEDED  # a full socket directory breaks nothing
        assert again.cold_start is False
    finally:
        await runner.close()

    assert engine.containers({"faasflow.function": name}) == []
    assert engine.volumes({"faasflow.function": name}) == []
    assert str(mountpoint) not in tmpfs_mounts()
    assert not mountpoint.parent.exists()


CHILD = """
import asyncio, json, sys
from pipeline.specs import FunctionSpec
from pipeline.runtime.engine import Engine
from pipeline.runtime.warm import WarmRunner
from pipeline.settings import Settings

async def main():
    runner = WarmRunner(Settings(), lambda function: {}, Engine())
    await runner.pool(FunctionSpec.from_dict(json.loads(sys.argv[1]))).prewarm()
    print("ready", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def die_leaving(spec_json: str) -> None:
    """Start the function's warm containers in a process of its own, then SIGKILL it."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, spec_json], stdout=subprocess.PIPE,
                             cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        child.stdout.close()  # type: ignore[union-attr]


async def test_the_orphan_cleanup_removes_the_containers_and_volumes_of_a_dead_process(
        engine: Engine, python_runtime: str) -> None:
    name = f"orphan-{uuid.uuid4().hex[:8]}"
    spec = code_function(name, python_runtime, "def main(event):\n    return event\n",
                         min_warm=2, max_concurrency=2)
    await asyncio.to_thread(die_leaving, json.dumps(spec.to_dict()))
    left = {"faasflow.function": name}
    assert len(engine.containers(left)) == len(engine.volumes(left)) == 2
    mountpoints = [Path(v["Mountpoint"]) for v in engine.volumes(left)]

    runner = WarmRunner(Settings(), lambda function: {}, engine)
    await runner.start()
    await runner.close()

    assert engine.containers(left) == []
    assert engine.volumes(left) == []
    assert not any(m.parent.exists() for m in mountpoints)
