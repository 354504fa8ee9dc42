"""The in-container runtimes (functions/runtime/) in their images, hardened as the platform
runs them, driven over their unix socket; and the developer workflow: `fn new` and `fn build`
for each template, the image answering warm and working cold.

The protocol tests run this checkout's runtimes, built under test tags
(``runtime_support.build_runtime_images``); the template tests build FROM the images
compose/images.sh builds: faasflow/runtime-python, faasflow/runtime-node, faasflow/echo (and
faasflow/base under them).
"""

from __future__ import annotations

import gc
import http.client
import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.models.containers import Container
from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.records import Status
from pipeline.runtime.base import RunRequest
from pipeline.runtime.docker import DockerRunner, hardening
from pipeline.runtime.engine import Engine
from pipeline.settings import RuntimeSettings
from pipeline.specs import FunctionSpec
from tests.integration.runtime_support import build_runtime_images

pytestmark = pytest.mark.integration

SHIM = Path(__file__).parents[2] / "functions" / "runtime" / "python"
SOCKET = "runtime.sock"


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        super().__init__("runtime", timeout=timeout)
        self.socket_path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


class Runtime:
    """A client of one runtime container, over one keep-alive connection."""

    def __init__(self, container: Container, path: Path) -> None:
        self.container = container
        self.connection = UnixConnection(path)

    def call(self, method: str, route: str, body: Any = None, logs: bool = False,
             raw: bytes | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if logs:
            headers["X-Faasflow-Logs"] = "1"
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        self.connection.request(method, route, body=data, headers=headers)
        response = self.connection.getresponse()
        return response.status, json.loads(response.read())

    def init(self, code: str, main: str = "main", **extra: Any) -> tuple[int, Any]:
        return self.call("POST", "/init", {"value": {"code": code, "main": main, **extra}})

    def run(self, value: Any, logs: bool = False, **extra: Any) -> tuple[int, Any]:
        return self.call("POST", "/run", {"value": value, **extra}, logs=logs)

    def health(self) -> int:
        return self.call("GET", "/health")[0]


Start = Callable[..., Runtime]


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    return build_runtime_images()


@pytest.fixture
def start(client: docker.DockerClient, tmp_path: Path) -> Iterator[Start]:
    """Start a runtime container with the platform's hardening (nobody, read-only root, tmpfs
    /tmp, no capabilities, no-new-privileges, no network, limits) and its socket directory
    bind-mounted; answer once the socket appears. Every container is removed afterwards."""
    containers: list[Container] = []
    runtimes: list[Runtime] = []

    def start_one(image: str, command: list[str] | None = None, *,
                  entrypoint: list[str] | None = None, environment: dict[str, str] | None = None,
                  shim: bool = False) -> Runtime:
        folder = tmp_path / f"socket-{len(containers)}"
        folder.mkdir()
        folder.chmod(0o777)  # the runtime runs as nobody
        volumes = {str(folder): {"bind": "/run/faasflow", "mode": "rw"}}
        if shim:
            volumes[str(SHIM)] = {"bind": "/opt/faasflow", "mode": "ro"}
        options = {**hardening(128, RuntimeSettings()), "log_config": {"type": "json-file"}}
        container = client.containers.run(
            image, command, entrypoint=entrypoint, environment=environment or {},
            volumes=volumes, user="65534:65534", detach=True, **options)
        containers.append(container)
        deadline = time.monotonic() + 20
        while not (folder / SOCKET).exists():
            container.reload()
            if container.status == "exited" or time.monotonic() > deadline:
                pytest.fail(f"{image} did not listen: {container.logs().decode()}")
            time.sleep(0.02)
        runtimes.append(Runtime(container, folder / SOCKET))
        return runtimes[-1]

    yield start_one
    for runtime in runtimes:
        runtime.connection.close()
    for container in containers:
        container.remove(force=True)


# ---- the protocol, in both runtimes -----------------------------------------------------------

CODE = {
    "python": ("import os, sys\n"
               "def main(event, context):\n"
               "    print('called', context.activation_id, os.environ.get('GREETING'))\n"
               "    print('to stderr', file=sys.stderr)\n"
               "    if event.get('raise'):\n"
               "        raise ValueError('asked to')\n"
               "    if event.get('set'):\n"
               "        return {1, 2}\n"
               "    return {'got': event, 'activation': context.activation_id}\n"),
    "node": ("exports.main = async (event, context) => {\n"
             "  console.log('called', context.activationId, process.env.GREETING);\n"
             "  console.error('to stderr');\n"
             "  if (event.raise) throw new RangeError('asked to');\n"
             "  if (event.set) return { big: 10n };\n"
             "  return { got: event, activation: context.activationId };\n"
             "};\n"),
}
SYNTAX_ERROR = {"python": "def main(:\n", "node": "exports.main = (event => {\n"}
NO_MAIN = {"python": "def other(event):\n    return 1\n", "node": "exports.other = () => 1;\n"}
ERROR_NAME = {"python": "ValueError: asked to", "node": "RangeError: asked to"}


@pytest.fixture(params=["python", "node"])
def lang(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_health_and_the_socket_mode(start: Start, images: dict[str, str], lang: str,
                                    tmp_path: Path) -> None:
    runtime = start(images[lang])

    assert runtime.health() == 200
    socket_file = next(tmp_path.glob(f"socket-*/{SOCKET}"))
    assert socket_file.stat().st_mode & 0o777 == 0o666
    assert runtime.run({}) == (403, {"error": "not initialized: POST /init first"})


def test_init_then_run_with_and_without_logs(start: Start, images: dict[str, str],
                                             lang: str) -> None:
    runtime = start(images[lang])

    assert runtime.init(CODE[lang], env={"GREETING": "hi"}) == (200, {"ok": True})
    assert runtime.run({"a": 1}, activation_id="act-1") == (
        200, {"got": {"a": 1}, "activation": "act-1"})
    status, body = runtime.run({"a": 2}, logs=True, activation_id="act-2",
                               deadline=int(time.time() * 1000) + 30_000)
    assert status == 200
    assert body == {"output": '{"got":{"a":2},"activation":"act-2"}',
                    "logs": "called act-2 hi\nto stderr\n"}


def test_errors_leave_the_runtime_usable(start: Start, images: dict[str, str],
                                         lang: str) -> None:
    runtime = start(images[lang])

    status, body = runtime.init(SYNTAX_ERROR[lang])
    assert status == 502
    assert body["error"].startswith("SyntaxError")
    status, body = runtime.init(NO_MAIN[lang])
    assert (status, body) == (502, {"error": body["error"]})
    assert "main" in body["error"]
    assert runtime.init(CODE[lang])[0] == 200  # a failed /init may be retried
    assert runtime.init(CODE[lang]) == (
        403, {"error": "Cannot initialize the action more than once."})

    assert runtime.run({"raise": True}) == (502, {"error": ERROR_NAME[lang]})
    status, body = runtime.run({"raise": True}, logs=True)
    assert (status, body["error"]) == (502, ERROR_NAME[lang])
    assert "called" in body["logs"]
    assert "asked to" in body["logs"]  # the stack trace
    status, body = runtime.run({"set": True})
    assert status == 502
    assert body["error"].startswith("the result is not JSON-serializable")
    assert runtime.call("POST", "/run", raw=b"{not json")[0] == 400
    assert runtime.run({"ok": 1}) == (200, {"got": {"ok": 1}, "activation": None})
    assert runtime.health() == 200


def test_python_handler_signatures(start: Start, images: dict[str, str]) -> None:
    one = start(images["python"])
    two = start(images["python"])

    assert one.init("def main(args):\n    return {'keys': sorted(args)}\n")[0] == 200
    assert two.init("def handle(event, context):\n"
                    "    return [event, context.activation_id, context.remaining_ms() > 0]\n",
                    main="handle")[0] == 200
    assert one.run({"b": 1, "a": 2}) == (200, {"keys": ["a", "b"]})
    assert two.run("text", activation_id="x", deadline=int(time.time() * 1000) + 9000) == (
        200, ["text", "x", True])


def test_node_takes_openwhisk_style_code(start: Start, images: dict[str, str]) -> None:
    runtime = start(images["node"])

    assert runtime.init("function main(params) { return { hello: params.name }; }")[0] == 200
    assert runtime.run({"name": "ow"}) == (200, {"hello": "ow"})


# ---- exec mode: any image with python3 ---------------------------------------------------------


def exec_mode(start: Start, image: str, command: list[str]) -> Runtime:
    """What the pool does with an image that has no runtime of its own."""
    return start(image, ["/opt/faasflow/runtime.py", "--exec", *command],
                 entrypoint=["python3"], shim=True)


def test_exec_mode_runs_the_command_per_call(start: Start) -> None:
    runtime = exec_mode(start, "faasflow/echo:latest", ["cat"])

    assert runtime.call("POST", "/init", {"value": {"env": {"X": "1"}}}) == (200, {"ok": True})
    assert runtime.run("raw text") == (200, "raw text")
    assert runtime.run({"order": 42}) == (200, {"order": 42})
    assert runtime.run([1, "two"], logs=True) == (200, {"output": '[1,"two"]', "logs": ""})


def test_exec_mode_failing_command(start: Start) -> None:
    runtime = exec_mode(start, "faasflow/echo:latest",
                        ["sh", "-c", "echo broken $FAASFLOW_INVOCATION_ID >&2; exit 3"])

    assert runtime.run("x", activation_id="inv-9") == (
        502, {"error": "sh exited with code 3: broken inv-9"})
    assert runtime.run("x", logs=True, activation_id="inv-10") == (
        502, {"error": "sh exited with code 3: broken inv-10", "logs": "broken inv-10\n"})
    assert runtime.health() == 200


# ---- templates: fn new, fn build, warm and cold ----------------------------------------------


WARM_EXPECTED = {
    "python": {"message": "Hello, Ada!"},
    "node": {"message": "Hello, Ada!"},
    "dockerfile": {"NAME": "ADA"},
}


@pytest.mark.parametrize("template", ["python", "node", "dockerfile"])
async def test_template_builds_into_a_warm_and_cold_function(
    start: Start, client: docker.DockerClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    template: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    name = f"tpl-test-{template}"
    cli = CliRunner()
    created = cli.invoke(app, ["fn", "new", name, "--lang", template])
    assert created.exit_code == 0, created.output
    built = cli.invoke(app, ["fn", "build", name, "--json"])
    assert built.exit_code == 0, built.output
    image = json.loads(built.output)["image"]
    try:
        assert image.startswith(f"faasflow-fn/{name}:")
        again = cli.invoke(app, ["fn", "build", name])
        assert "up to date" in again.output

        config = client.images.get(image).attrs["Config"]
        if template == "dockerfile":  # the pool wraps its own command in exec mode
            runtime = exec_mode(start, image, [*(config["Entrypoint"] or []), *config["Cmd"]])
        else:
            assert config["Labels"]["faasflow.runtime"] == template
            runtime = start(image, environment={"FAASFLOW_MODE": "warm"})
        assert runtime.run({"name": "Ada"}) == (200, WARM_EXPECTED[template])

        cold = await cold_run(image, name, b'{"name": "Ada"}')
        assert cold.status is Status.SUCCEEDED, (cold.error, cold.logs)
        assert json.loads(cold.output) == WARM_EXPECTED[template]
        assert cold.logs  # the handler's print went to stderr, not into the output
    finally:
        client.images.remove(image, force=True)
        client.images.remove(f"faasflow-fn/{name}:latest", force=True)


async def cold_run(image: str, name: str, payload: bytes) -> Any:
    """Through the platform's own cold runner: a container per call, stdin in, stdout out."""
    engine = Engine()
    runner = DockerRunner(RuntimeSettings(), engine)
    try:
        digest = await runner.resolve_image(image)
        function = FunctionSpec(name=name, image=image, image_digest=digest, timeout_s=20)
        return await runner.run(RunRequest(
            function=function, invocation_id=f"inv-{name}", payload=payload,
            env={"FAASFLOW_INVOCATION_ID": f"inv-{name}", "FAASFLOW_FUNCTION": name}))
    finally:
        engine.close()
        gc.collect()


def test_built_image_loads_its_handler_at_start(start: Start, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                client: docker.DockerClient) -> None:
    """No /init needed; /init only takes env; a broken handler answers every /run with why."""
    monkeypatch.chdir(tmp_path)
    cli = CliRunner()
    assert cli.invoke(app, ["fn", "new", "tpl-broken", "--lang", "python"]).exit_code == 0
    (tmp_path / "tpl-broken" / "handler.py").write_text("def handle(event, context:\n")
    built = cli.invoke(app, ["fn", "build", "tpl-broken", "--json"])
    assert built.exit_code == 0, built.output
    image = json.loads(built.output)["image"]
    try:
        runtime = start(image, environment={"FAASFLOW_MODE": "warm"})
        status, body = runtime.run({})
        assert status == 502
        assert body["error"].startswith("the handler could not be loaded: SyntaxError")
        assert "handler.py, line 1" in body["error"]
        assert runtime.health() == 200
    finally:
        client.images.remove(image, force=True)
        client.images.remove("faasflow-fn/tpl-broken:latest", force=True)
