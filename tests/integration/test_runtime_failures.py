"""Engine failures are not function failures: a container stopped, killed or removed by the
Docker Engine, or an engine that went away mid-run, is UNAVAILABLE (retried); a function that
crashes its runtime or runs out of memory is ERROR (its own). Real containers, stopped from
outside while a call is in flight; the engine is taken away through a proxy that is cut."""

from __future__ import annotations

import asyncio
import gc
import json
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import docker
import pytest

from pipeline.records import Failure, Status
from pipeline.runtime.base import RunOutcome, RunRequest
from pipeline.runtime.docker import DockerRunner
from pipeline.runtime.engine import Engine
from pipeline.runtime.warm import WarmRunner
from pipeline.settings import RuntimeSettings, Settings
from pipeline.specs import FunctionSpec
from tests.integration.runtime_support import EngineProxy, build_runtime_images, code_function

pytestmark = pytest.mark.integration

FAULTS = (
    "import ctypes, os, time\n"
    "def main(event, context):\n"
    "    what = event.get('do')\n"
    "    if what == 'exit':\n"
    "        os._exit(1)\n"
    "    if what == 'segv':\n"
    "        ctypes.string_at(0)\n"
    "    if what == 'oom':\n"
    "        return len([bytearray(8 << 20) for _ in range(64)])\n"
    "    if what == 'sleep':\n"
    "        open('/tmp/busy', 'w').close()\n"
    "        time.sleep(60)\n"
    "    return 'ok'\n"
)
Stop = Callable[[docker.DockerClient, str], None]
STOPS: dict[str, Stop] = {
    "stop": lambda client, ident: client.api.stop(ident, timeout=5),
    "kill": lambda client, ident: client.api.kill(ident),
    "rm -f": lambda client, ident: client.api.remove_container(ident, force=True),
}


@pytest.fixture(scope="module")
def python_runtime() -> str:
    return build_runtime_images()["python"]


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[EngineProxy]:
    running = EngineProxy(tmp_path / "docker.sock")
    yield running
    running.cut()
    with warnings.catch_warnings():
        # docker-py leaves the sockets of its failed connections to the garbage collector
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture
async def warm(python_runtime: str) -> AsyncIterator[tuple[WarmRunner, FunctionSpec]]:
    engine = Engine()
    runner = WarmRunner(Settings(), lambda function: {}, engine)
    function = code_function(f"faults-{uuid.uuid4().hex[:8]}", python_runtime, FAULTS,
                             timeout_s=90, memory_mb=64)
    yield runner, function
    await runner.close()
    engine.close()


def request(function: FunctionSpec, do: str) -> RunRequest:
    return RunRequest(function=function, invocation_id=uuid.uuid4().hex,
                      payload=json.dumps({"do": do}).encode(), content_type="application/json")


async def while_running(call: Awaitable[RunOutcome], ready: Callable[[], str | None],
                        act: Callable[[str], None]) -> RunOutcome:
    """Start ``call``; once ``ready()`` names a container, ``act`` on it; the outcome."""
    running = asyncio.ensure_future(call)
    deadline = time.monotonic() + 30
    while (ident := await asyncio.to_thread(ready)) is None:
        assert not running.done(), running.result()
        assert time.monotonic() < deadline, "the call never got going"
        await asyncio.sleep(0.05)
    await asyncio.to_thread(act, ident)
    return await asyncio.wait_for(running, 60)


def busy_container(client: docker.DockerClient, function: str) -> Callable[[], str | None]:
    """The warm container whose handler has begun to sleep (its marker is in its /tmp)."""

    def ready() -> str | None:
        for found in client.api.containers(filters={"label": f"faasflow.function={function}",
                                                    "status": "running"}):
            probe = client.api.exec_create(found["Id"], ["test", "-e", "/tmp/busy"])
            client.api.exec_start(probe["Id"])
            if client.api.exec_inspect(probe["Id"])["ExitCode"] == 0:
                return str(found["Id"])
        return None

    return ready


@pytest.mark.parametrize(("do", "reason"), [
    ("exit", "the runtime crashed (exit code 1)"),
    ("segv", "the runtime crashed (killed by SIGSEGV)"),
    ("oom", "out of memory: exceeded its 64 MB limit"),
])
async def test_a_function_that_crashes_its_runtime_is_an_error(
        warm: tuple[WarmRunner, FunctionSpec], do: str, reason: str) -> None:
    runner, function = warm

    outcome = await runner.run(request(function, do))

    assert (outcome.status, outcome.failure, outcome.error) == (Status.FAILED, Failure.ERROR,
                                                                reason)
    after = await runner.run(request(function, "nothing"))
    assert (after.status, after.output, after.cold_start) == (Status.SUCCEEDED, b"ok", True)


@pytest.mark.parametrize("stop", list(STOPS))
async def test_a_warm_container_stopped_by_the_engine_is_unavailable(
        warm: tuple[WarmRunner, FunctionSpec], client: docker.DockerClient, stop: str) -> None:
    runner, function = warm

    outcome = await while_running(runner.run(request(function, "sleep")),
                                  busy_container(client, function.name),
                                  lambda ident: STOPS[stop](client, ident))

    assert (outcome.status, outcome.failure) == (Status.FAILED, Failure.UNAVAILABLE)
    assert outcome.error in ("its container was removed while it ran",
                             "stopped by the Docker Engine (exit code 0)",
                             "stopped by the Docker Engine (exit code 137)")
    after = await runner.run(request(function, "nothing"))
    assert (after.status, after.output) == (Status.SUCCEEDED, b"ok")


async def test_a_warm_call_that_loses_its_container_and_the_engine_is_unavailable(
        python_runtime: str, proxy: EngineProxy, client: docker.DockerClient) -> None:
    engine = proxy.engine()
    runner = WarmRunner(Settings(), lambda function: {}, engine)
    function = code_function(f"lost-{uuid.uuid4().hex[:8]}", python_runtime, FAULTS,
                             timeout_s=90)
    try:
        def stop_without_the_engine(ident: str) -> None:
            proxy.cut()
            client.api.stop(ident, timeout=5)

        outcome = await while_running(runner.run(request(function, "sleep")),
                                      busy_container(client, function.name),
                                      stop_without_the_engine)

        assert (outcome.status, outcome.failure) == (Status.FAILED, Failure.UNAVAILABLE)
        assert outcome.error is not None
        assert outcome.error.startswith("the runtime and the Docker Engine were lost")
    finally:
        await runner.close()  # what it cannot remove without the engine is removed below
        engine.close()
        remove_everything_of(client, function.name)


def remove_everything_of(client: docker.DockerClient, function: str) -> None:
    label = {"label": f"faasflow.function={function}"}
    for found in client.api.containers(all=True, filters=label):
        client.api.remove_container(found["Id"], force=True)


def cold_container(client: docker.DockerClient, invocation_id: str) -> Callable[[], str | None]:
    def ready() -> str | None:
        found = client.api.containers(filters={"label": f"faasflow.invocation={invocation_id}",
                                               "status": "running"})
        return str(found[0]["Id"]) if found else None

    return ready


def sleeper(image: str, client: docker.DockerClient) -> FunctionSpec:
    return FunctionSpec(name=f"cold-{uuid.uuid4().hex[:8]}", image=image,
                        image_digest=str(client.images.get(image).id), timeout_s=60)


@pytest.mark.parametrize("stop", ["stop", "kill"])
async def test_a_cold_container_stopped_by_the_engine_is_unavailable(
        test_images: dict[str, str], client: docker.DockerClient, stop: str) -> None:
    engine = Engine()
    runner = DockerRunner(RuntimeSettings(), engine)
    run = RunRequest(function=sleeper(test_images["sleep"], client),
                     invocation_id=uuid.uuid4().hex, payload=b"x", env={"SLEEP_S": "30"})
    try:
        outcome = await while_running(runner.run(run), cold_container(client, run.invocation_id),
                                      lambda ident: STOPS[stop](client, ident))
    finally:
        engine.close()

    assert (outcome.status, outcome.failure, outcome.error) == (
        Status.FAILED, Failure.UNAVAILABLE, "stopped by the Docker Engine (exit code 137)")


async def test_a_cold_function_printing_at_its_deadline_is_killed_at_it(
        test_images: dict[str, str], client: docker.DockerClient) -> None:
    """200 MB printed, a 0.4 s timeout: the run ends at the deadline. The engine answers a
    kill once the container has stopped, which waited for its unread output: 60.5 s, the
    engine's own timeout, before the output stream was closed first."""
    engine = Engine()
    runner = DockerRunner(RuntimeSettings(), engine)
    image = test_images["chatty"]
    function = FunctionSpec(name=f"chatty-{uuid.uuid4().hex[:8]}", image=image,
                            image_digest=str(client.images.get(image).id), timeout_s=0.4)
    try:
        outcome = await runner.run(RunRequest(function=function, payload=b"go", env={},
                                              invocation_id=uuid.uuid4().hex))
    finally:
        engine.close()

    assert (outcome.status, outcome.failure) == (Status.TIMEOUT, Failure.TIMEOUT)
    assert outcome.duration_s < 10, outcome.duration_s


async def test_a_cold_run_that_loses_the_engine_is_unavailable(
        test_images: dict[str, str], client: docker.DockerClient, proxy: EngineProxy) -> None:
    engine = proxy.engine()
    runner = DockerRunner(RuntimeSettings(), engine)
    run = RunRequest(function=sleeper(test_images["sleep"], client),
                     invocation_id=uuid.uuid4().hex, payload=b"x", env={"SLEEP_S": "30"})
    try:
        outcome = await while_running(runner.run(run), cold_container(client, run.invocation_id),
                                      lambda ident: proxy.cut())
    finally:
        engine.close()
        for found in client.api.containers(
                all=True, filters={"label": f"faasflow.invocation={run.invocation_id}"}):
            client.api.remove_container(found["Id"], force=True)

    assert (outcome.status, outcome.failure) == (Status.FAILED, Failure.UNAVAILABLE)
    assert outcome.error is not None
    assert outcome.error.startswith("the Docker Engine was lost while it ran")


@pytest.mark.parametrize("stop", ["stop", "kill"])
async def test_an_idle_container_that_died_is_replaced_without_failing_the_call(
        warm: tuple[WarmRunner, FunctionSpec], client: docker.DockerClient, stop: str) -> None:
    """As after a dockerd restart: the call never reached it, so it goes to a new one."""
    runner, function = warm
    first = await runner.run(request(function, "nothing"))
    (idle,) = client.api.containers(filters={"label": f"faasflow.function={function.name}"})
    await asyncio.to_thread(STOPS[stop], client, idle["Id"])

    outcome = await runner.run(request(function, "nothing"))

    assert (first.status, first.cold_start) == (Status.SUCCEEDED, True)
    assert (outcome.status, outcome.output, outcome.cold_start) == (Status.SUCCEEDED, b"ok", True)


def test_the_engine_tells_a_kill_for_memory_from_its_own_kill_by_its_events(
        client: docker.DockerClient) -> None:
    """What the engine falls back on when dockerd's OOM mark is missing or late: a
    container the kernel killed for memory has no ``kill`` event, one killed through the
    engine has one."""
    engine = Engine()
    hog = client.containers.run(
        "faasflow/runtime-python:latest", entrypoint="python3", detach=True,
        command=["-c", "h = [bytearray(16 << 20) for _ in range(64)]"],
        mem_limit="64m", memswap_limit="64m")
    sleeper = client.containers.run("faasflow/runtime-python:latest", entrypoint="sleep",
                                    command=["30"], detach=True)
    try:
        hog.wait(timeout=30)
        sleeper.kill()
        sleeper.wait(timeout=30)
        hog.reload()
        sleeper.reload()
        assert hog.attrs["State"]["ExitCode"] == sleeper.attrs["State"]["ExitCode"] == 137
        assert engine.killed_for_memory(hog.id, hog.attrs["State"])
        assert not engine.killed_for_memory(sleeper.id, sleeper.attrs["State"])
    finally:
        for container in (hog, sleeper):
            container.remove(force=True)
        engine.close()
