"""Images built with the Fn Project's Python FDK (the real ``fdk`` from PyPI, as ``fn build``
installs it) run unchanged as warm faasflow functions (``contract: fn``): the FDK listens on
``FN_LISTENER`` and is called with ``POST /call``, as Fn's agent calls it. Its failures get the
verdicts of faasflow's own warm runtimes."""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.records import Failure, Status
from pipeline.runtime.base import RunOutcome, RunRequest
from pipeline.runtime.engine import Engine
from pipeline.runtime.warm import WarmRunner
from pipeline.settings import RuntimeSettings, Settings
from pipeline.specs import Contract, FunctionSpec, Mode
from tests.integration.fn_support import build_fdk_images
from tests.integration.platform import Platform

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fdk_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return build_fdk_images(tmp_path_factory.mktemp("fdk"))


@pytest.fixture
async def runner() -> AsyncIterator[tuple[WarmRunner, Engine]]:
    engine = Engine()
    settings = Settings(runtime=RuntimeSettings(
        init_timeout_s=3, socket_dir=Path(os.environ["FAASFLOW_RUNTIME_SOCKET_DIR"])))
    warm = WarmRunner(settings, lambda function: {}, engine)
    yield warm, engine
    await warm.close()
    engine.close()


def fdk_function(engine: Engine, image: str, **fields: Any) -> FunctionSpec:
    digest = engine.image_id(image)
    assert digest is not None
    spec = FunctionSpec(name=f"fdk-{uuid.uuid4().hex[:8]}", image=image, image_digest=digest,
                        mode=Mode.WARM, contract=Contract.FN, max_concurrency=1,
                        timeout_s=5, memory_mb=64)
    return replace(spec, **fields)


async def call(runner: WarmRunner, function: FunctionSpec, order: dict[str, Any] | None = None,
               **env: str) -> RunOutcome:
    return await runner.run(RunRequest(
        function=function, invocation_id=uuid.uuid4().hex, env=env,
        payload=json.dumps(order).encode() if order is not None else b"",
        content_type="application/json"))


def test_the_fdk_hello_world_answers_on_faasflow_as_on_fn(
        platform: Platform, fdk_images: dict[str, str], unique: str) -> None:
    spec = platform.deploy(unique, fdk_images["hello"], mode="warm", contract="fn")
    assert spec["contract"] == "fn"

    first = platform.anonymous.post(f"/function/{unique}", json={"name": "Fn"})
    second = platform.anonymous.post(f"/function/{unique}", content=b"")

    assert (first.status_code, first.json()) == (200, {"message": "Hello Fn"}), first.text
    assert (second.status_code, second.json()) == (200, {"message": "Hello World"})
    invocation = platform.api.get(f"/v1/invocations/{second.headers['x-call-id']}").json()
    assert invocation["cold_start"] is False
    cold = platform.api.put(f"/v1/functions/{unique}-cold",
                            json={"image": fdk_images["hello"], "contract": "fn"})
    assert cold.status_code == 422, cold.text  # an FDK only listens: it runs warm
    assert "runs warm" in cold.json()["error"]["message"]


async def test_the_node_fdk_hello_world_runs_warm_too(
        runner: tuple[WarmRunner, Engine], fdk_images: dict[str, str]) -> None:
    warm, engine = runner
    function = fdk_function(engine, fdk_images["node-hello"])

    first = await call(warm, function, {"name": "Node"})
    second = await call(warm, function)

    assert (first.status, json.loads(first.output)) == (Status.SUCCEEDED,
                                                        {"message": "Hello Node"}), first.error
    assert (second.status, json.loads(second.output)) == (Status.SUCCEEDED,
                                                          {"message": "Hello World"})
    assert (first.cold_start, second.cold_start) == (True, False)


async def test_the_fdk_gets_fn_headers_and_environment(
        runner: tuple[WarmRunner, Engine], fdk_images: dict[str, str]) -> None:
    warm, engine = runner
    function = fdk_function(engine, fdk_images["tricks"],
                            annotations={"fn.app_name": "shop", "fn.fn_name": "tricks"})
    before = datetime.now(UTC)

    outcome = await call(warm, function, {"do": "echo"}, CE_ID="e-1", CE_SOURCE="orders")

    assert outcome.status is Status.SUCCEEDED, outcome.error
    seen = json.loads(outcome.output)
    deadline = datetime.fromisoformat(seen["deadline"])
    assert before + timedelta(seconds=4) < deadline < before + timedelta(seconds=7)
    assert seen["method"] == "POST"
    assert seen["url"] == f"/function/{function.name}"
    assert seen["format"] == "http-stream"
    assert seen["fn_name"] == "tricks"
    assert seen["headers"]["content-type"] == "application/json"
    assert (seen["headers"]["ce-id"], seen["headers"]["ce-source"]) == ("e-1", "orders")
    assert seen["env"]["FN_LISTENER"] == "unix:/run/faasflow/runtime.sock"
    assert (seen["env"]["FN_APP_NAME"], seen["env"]["FN_MEMORY"]) == ("shop", "64")
    # the FDK's own socket in place of its symlink: the directory holds nothing else
    (container,) = engine.containers({"faasflow.function": function.name})
    (mount,) = [m for m in engine.container_mounts(container["Id"])
                if m["Destination"] == "/run/faasflow"]
    assert os.listdir(mount["Source"]) == ["runtime.sock"]
    assert stat.S_ISSOCK(os.lstat(Path(mount["Source"]) / "runtime.sock").st_mode)
    again = await call(warm, function, {"do": "echo"})
    assert (again.status, again.cold_start) == (Status.SUCCEEDED, False)


@pytest.mark.parametrize(("order", "status", "failure", "error"), [
    ({"do": "raise"}, Status.FAILED, Failure.ERROR, "the function failed: boom"),
    ({"do": "status"}, Status.FAILED, Failure.ERROR,
     "the function answered HTTP 418: I am a teapot"),
    ({"do": "exit"}, Status.FAILED, Failure.ERROR, "the runtime crashed (exit code 3)"),
    ({"do": "oom"}, Status.FAILED, Failure.ERROR, "out of memory: exceeded its 64 MB limit"),
    ({"do": "sleep"}, Status.TIMEOUT, Failure.TIMEOUT, "timed out after 1s and was killed"),
])
async def test_fdk_failures_get_the_verdicts_of_warm_runtimes(
        runner: tuple[WarmRunner, Engine], fdk_images: dict[str, str], order: dict[str, Any],
        status: Status, failure: Failure, error: str) -> None:
    warm, engine = runner
    function = fdk_function(engine, fdk_images["tricks"], timeout_s=1)

    outcome = await call(warm, function, order)

    assert (outcome.status, outcome.failure, outcome.error) == (status, failure, error)
    after = await call(warm, function, {"do": "nothing"})
    assert (after.status, after.output) == (Status.SUCCEEDED, b"ok")


@pytest.mark.parametrize(("command", "error"), [
    (("python3", "-c", "import time; time.sleep(600)"),
     "the Fn FDK did not listen on FN_LISTENER (unix:/run/faasflow/runtime.sock) within 3s "
     "of starting"),
    (("/python/bin/fdk", "/function/missing.py", "handler"),
     "its process exited with code 1 before it listened on FN_LISTENER"),
])
async def test_an_fdk_that_never_listens_is_a_start_failure(
        runner: tuple[WarmRunner, Engine], fdk_images: dict[str, str],
        command: tuple[str, ...], error: str) -> None:
    warm, engine = runner
    function = fdk_function(engine, fdk_images["tricks"], command=command)

    outcome = await call(warm, function, {"do": "nothing"})

    assert (outcome.status, outcome.failure, outcome.error) == (Status.FAILED, Failure.START,
                                                                error)
