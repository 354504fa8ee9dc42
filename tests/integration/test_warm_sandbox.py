"""A warm container's socket directory: once its runtime listens, a function can write
nothing there (not even its code at /init); and nothing of it outlives the container — not
even when the process that started it dies, which the next process on the same socket root
finds out from the dead one's free lock."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pipeline.records import Status
from pipeline.runtime.base import RunRequest
from pipeline.runtime.engine import Engine
from pipeline.runtime.sockets import INSTANCE
from pipeline.runtime.warm import WarmRunner
from pipeline.settings import RuntimeSettings, Settings
from tests.integration.runtime_support import REPO, build_runtime_images, code_function

pytestmark = pytest.mark.integration

WRITE = (
    "import errno\n"
    "def attempt(name):\n"
    "    try:\n"
    "        with open('/run/faasflow/' + name, 'w') as note:\n"
    "            note.write('x')\n"
    "    except OSError as exc:\n"
    "        return errno.errorcode[exc.errno]\n"
    "    return None\n"
    "AT_INIT = attempt('at-init')\n"
    "def main(event, context):\n"
    "    return {'init': AT_INIT, 'run': attempt('at-run')}\n"
)


@pytest.fixture(scope="module")
def python_runtime() -> str:
    return build_runtime_images()["python"]


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    running = Engine()
    yield running
    running.close()


def short_dir() -> Path:
    """Under /tmp: a pytest tmp_path is too long a prefix for a unix socket's path."""
    return Path(tempfile.mkdtemp(prefix="ff-warm-"))


@pytest.fixture
def socket_root() -> Iterator[Path]:
    made = short_dir()
    yield made
    shutil.rmtree(made, ignore_errors=True)


def runner_on(engine: Engine, socket_root: Path) -> WarmRunner:
    settings = Settings(runtime=RuntimeSettings(socket_dir=socket_root))
    return WarmRunner(settings, lambda function: {}, engine)


async def test_a_function_cannot_write_into_its_socket_directory_once_its_runtime_listens(
        engine: Engine, python_runtime: str, socket_root: Path) -> None:
    name = f"write-{uuid.uuid4().hex[:8]}"
    function = code_function(name, python_runtime, WRITE)
    runner = runner_on(engine, socket_root)
    await runner.start()
    try:
        outcome = await runner.run(RunRequest(function=function, invocation_id=uuid.uuid4().hex,
                                              payload=b""))
        assert outcome.status is Status.SUCCEEDED, outcome.error
        assert json.loads(outcome.output) == {"init": "EACCES", "run": "EACCES"}

        (found,) = engine.containers({"faasflow.function": name})
        labels = found["Labels"]
        owner = labels["faasflow.owner"]
        assert INSTANCE.fullmatch(owner)
        assert labels.items() >= {"faasflow.function": name, "faasflow.mode": "warm",
                                  "faasflow.sockets": str(socket_root)}.items()
        (mount,) = [m for m in engine.container_mounts(found["Id"])
                    if m["Destination"] == "/run/faasflow"]
        directory = Path(mount["Source"])  # on this host, its own host path
        assert directory.parent == socket_root / owner
        assert mount["RW"] is True
        assert os.listdir(directory) == ["runtime.sock"]
        status = os.stat(directory)
        assert (status.st_uid, stat.S_IMODE(status.st_mode)) == (0, 0o755)
        assert f"{owner}.lock" in os.listdir(socket_root)
    finally:
        await runner.close()

    assert engine.containers({"faasflow.function": name}) == []
    assert os.listdir(socket_root) == []  # its directory and lock went with it


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


def start_child(spec_json: str, socket_root: Path) -> subprocess.Popen[bytes]:
    """A process of its own that starts the function's warm containers on ``socket_root``
    and lives on, once they are up."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, spec_json], stdout=subprocess.PIPE, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO),
             "FAASFLOW_RUNTIME_SOCKET_DIR": str(socket_root)})
    assert child.stdout is not None
    if child.stdout.readline() != b"ready\n":
        kill(child)
        pytest.fail("the child did not start its warm containers")
    return child


def kill(child: subprocess.Popen[bytes]) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    if child.stdout is not None:
        child.stdout.close()


async def cleanup_by(engine: Engine, socket_root: Path) -> None:
    """What a process on ``socket_root`` does when it starts (and then stops cleanly)."""
    runner = runner_on(engine, socket_root)
    await runner.start()
    await runner.close()


async def test_the_orphan_cleanup_removes_the_containers_of_a_dead_process_only(
        engine: Engine, python_runtime: str, socket_root: Path) -> None:
    name = f"orphan-{uuid.uuid4().hex[:8]}"
    spec = code_function(name, python_runtime, "def main(event):\n    return event\n",
                         min_warm=2, max_concurrency=2)
    left = {"faasflow.function": name}
    child = await asyncio.to_thread(start_child, json.dumps(spec.to_dict()), socket_root)
    try:
        found = engine.containers(left)
        assert len(found) == 2
        (owner,) = {c["Labels"]["faasflow.owner"] for c in found}
        assert len(os.listdir(socket_root / owner)) == 3  # shim/ and two containers'

        await cleanup_by(engine, socket_root)  # its owner lives
        elsewhere = short_dir()
        try:
            await cleanup_by(engine, elsewhere)  # another socket root's: not its to judge
        finally:
            shutil.rmtree(elsewhere, ignore_errors=True)
        assert len(engine.containers(left)) == 2
        assert sorted(os.listdir(socket_root)) == [owner, f"{owner}.lock"]
    finally:
        await asyncio.to_thread(kill, child)

    await cleanup_by(engine, socket_root)

    assert engine.containers(left) == []
    assert os.listdir(socket_root) == []

