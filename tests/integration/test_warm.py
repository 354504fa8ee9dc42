"""Warm functions: pools of long-lived runtime containers, reached over a unix socket."""

from __future__ import annotations

import concurrent.futures
import json
import time
from pathlib import Path
from typing import Any

import docker
import pytest
from typer.testing import CliRunner

from pipeline.cli.main import app as cli
from tests.integration.platform import TOKEN, Platform

ECHO_PY = "def main(event, context):\n    return {'echo': event, 'id': context.activation_id}\n"


def warm_containers(function: str) -> list[Any]:
    client = docker.from_env()
    try:
        return client.containers.list(
            filters={"label": [f"faasflow.function={function}", "faasflow.mode=warm"]})
    finally:
        client.close()


def invoke(platform: Platform, name: str, body: bytes = b"{}",
           content_type: str = "application/json") -> tuple[int, Any, dict[str, Any]]:
    response = platform.anonymous.post(f"/function/{name}", content=body,
                                       headers={"Content-Type": content_type})
    result = platform.api.get(f"/v1/invocations/{response.headers['x-call-id']}").json()
    return response.status_code, response, result


def deploy_code(platform: Platform, name: str, code: str, runtime: str = "python",
                **fields: Any) -> dict[str, Any]:
    return platform.deploy(name, None, runtime=runtime, code=code, **fields)


def test_python_code_function_runs_warm_without_a_build(platform: Platform, unique: str) -> None:
    spec = deploy_code(platform, unique, ECHO_PY)
    assert spec["mode"] == "warm"
    assert spec["image"] == "faasflow/runtime-python:latest"

    status, response, first = invoke(platform, unique, b'{"n": 1}')
    assert status == 200
    assert response.json()["echo"] == {"n": 1}
    assert first["cold_start"] is True
    assert first["init_s"] > 0

    status, response, second = invoke(platform, unique, b'{"n": 2}')
    assert response.json() == {"echo": {"n": 2}, "id": second["invocation_id"]}
    assert second["cold_start"] is False
    assert second["init_s"] is None
    assert second["timings"]["duration_s"] < first["init_s"]  # a warm call beats a start


def test_node_code_function(platform: Platform, unique: str) -> None:
    code = ("module.exports.main = async (event, context) => "
            "({ greeting: `hi ${event.name}`, id: context.activationId });\n")
    deploy_code(platform, unique, code, runtime="node")

    status, response, result = invoke(platform, unique, b'{"name": "node"}')

    assert status == 200, response.text
    assert response.json() == {"greeting": "hi node", "id": result["invocation_id"]}


def test_a_warm_function_triggered_by_a_webhook(platform: Platform, unique: str) -> None:
    deploy_code(platform, unique, ECHO_PY)
    platform.subscribe(unique, unique)
    hook = platform.webhook("warm", unique)

    event_id = platform.deliver(hook, b'{"via": "kafka"}', "application/json")
    (result,) = platform.results(event_id)

    assert result["status"] == "succeeded", result
    assert '{"echo":{"via":"kafka"},' in result["output"]  # compact, as cold answers


def test_prewarm_and_idle_reaping(platform: Platform, unique: str) -> None:
    deploy_code(platform, unique, ECHO_PY, min_warm=2, idle_timeout_s=1)

    deadline = time.monotonic() + 30
    while len(warm_containers(unique)) < 4:  # the gateway's pool and the worker's
        assert time.monotonic() < deadline, warm_containers(unique)
        time.sleep(0.2)
    owners: dict[str, int] = {}
    for container in warm_containers(unique):
        owner = container.labels["faasflow.owner"]
        owners[owner] = owners.get(owner, 0) + 1
    assert sorted(owners.values()) == [2, 2]

    platform.deploy(unique, None, runtime="python", code=ECHO_PY,
                    min_warm=0, idle_timeout_s=1, max_concurrency=3)
    status, _, _ = invoke(platform, unique)
    assert status == 200
    deadline = time.monotonic() + 30
    while warm_containers(unique):
        assert time.monotonic() < deadline, "idle containers were not reaped"
        time.sleep(0.2)


def test_concurrency_bound_queues_the_next_call(platform: Platform, unique: str) -> None:
    code = "import time\ndef main(event, context):\n    time.sleep(1)\n    return event\n"
    deploy_code(platform, unique, code, max_concurrency=1)
    invoke(platform, unique)  # warm it up

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        calls = list(pool.map(lambda n: invoke(platform, unique, b'{"n": %d}' % n), (1, 2)))
    elapsed = time.monotonic() - started

    assert [status for status, _, _ in calls] == [200, 200]
    assert elapsed >= 2.0
    assert len(warm_containers(unique)) <= 1


def test_faults_fail_the_call_and_the_pool_stays_healthy(platform: Platform, unique: str) -> None:
    code = (
        "import os, time\n"
        "def main(event, context):\n"
        "    what = event.get('do')\n"
        "    if what == 'raise': raise ValueError('bad input')\n"
        "    if what == 'crash': os._exit(3)\n"
        "    if what == 'sleep': time.sleep(30)\n"
        "    if what == 'object': return object()\n"
        "    if what == 'oom': return len([bytearray(8 << 20) for _ in range(64)])\n"
        "    if what == 'print': print('x' * (8 << 20)); return 'printed'\n"
        "    return 'ok'\n"
    )
    deploy_code(platform, unique, code, timeout_s=2, memory_mb=64)
    assert invoke(platform, unique, b'{"do": "nothing"}')[0] == 200

    expectations = {
        "raise": (500, "bad input"),
        "object": (500, "JSON"),
        "crash": (500, "crashed"),
        "sleep": (504, "timed out"),
        "oom": (500, "out of memory"),
    }
    for what, (status, reason) in expectations.items():
        code_, response, result = invoke(platform, unique, b'{"do": "%s"}' % what.encode())
        assert code_ == status, (what, response.text)
        assert reason.lower() in result["error"].lower(), (what, result["error"])
        ok_status, ok, _ = invoke(platform, unique, b'{"do": "nothing"}')
        assert ok_status == 200, (what, ok.text)
        assert ok.text == "ok"

    status, response, result = invoke(platform, unique, b'{"do": "print"}')
    assert status == 200
    assert len(result["logs"].encode()) <= 64 * 1024


def test_init_failure_is_a_failed_result(platform: Platform, unique: str) -> None:
    deploy_code(platform, unique, "def main(event, context)\n    return 1\n")
    status, _, result = invoke(platform, unique)
    assert status == 500
    assert "init" in result["error"].lower()


def test_redeploy_drains_the_old_containers(platform: Platform, unique: str) -> None:
    deploy_code(platform, unique, "def main(event, context):\n    return 'v1'\n")
    assert invoke(platform, unique)[1].text == "v1"
    old = {c.id for c in warm_containers(unique)}

    deploy_code(platform, unique, "def main(event, context):\n    return 'v2'\n")

    assert invoke(platform, unique)[1].text == "v2"
    deadline = time.monotonic() + 15
    while old & {c.id for c in warm_containers(unique)}:
        assert time.monotonic() < deadline, "the old version's containers remained"
        time.sleep(0.2)


def test_an_image_runs_warm_through_exec_mode(platform: Platform, unique: str) -> None:
    platform.deploy(unique, "faasflow/echo:latest", mode="warm")

    first = invoke(platform, unique, b"hello exec", "text/plain")
    second = invoke(platform, unique, b"again", "text/plain")

    assert (first[0], first[1].text) == (200, "hello exec")
    assert (second[1].text, second[2]["cold_start"]) == ("again", False)


@pytest.mark.parametrize("mode", ["warm", "cold"])
def test_every_container_is_hardened(platform: Platform, unique: str, mode: str,
                                     test_images: dict[str, str]) -> None:
    platform.deploy(unique, test_images["sleep"], mode=mode, memory_mb=96,
                    env={"SLEEP_S": "3"})
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(invoke, platform, unique, b"x", "text/plain")
        client = docker.from_env()
        deadline = time.monotonic() + 20
        while not (found := client.containers.list(
                filters={"label": f"faasflow.function={unique}"})):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        host = found[0].attrs["HostConfig"]
        config = found[0].attrs["Config"]
        client.close()
        assert pending.result()[0] == 200
    assert config["User"] == "65534:65534"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["NetworkMode"] == "none"
    assert host["Memory"] == host["MemorySwap"] == 96 * 1024 * 1024
    assert host["PidsLimit"] == 256
    assert "/tmp" in host["Tmpfs"]
    assert host["NanoCpus"] == 1_000_000_000


def test_a_fork_bomb_is_contained_and_the_pool_recovers(platform: Platform, unique: str) -> None:
    code = (
        "import subprocess, time\n"
        "def main(event, context):\n"
        "    if event.get('bomb'):\n"
        "        subprocess.run(['bash', '-c', ':(){ :|:& };:'])\n"
        "        time.sleep(60)\n"
        "    return 'fine'\n"
    )
    deploy_code(platform, unique, code, timeout_s=3, max_concurrency=1)

    status, _, result = invoke(platform, unique, b'{"bomb": true}')

    assert status == 504
    assert result["status"] == "timeout"
    ok_status, ok, after = invoke(platform, unique, b"{}")
    assert (ok_status, ok.text) == (200, "fine")
    assert after["cold_start"] is True  # the bombed container was killed and replaced


def test_a_template_folder_is_built_and_deployed(platform: Platform, unique: str,
                                                 tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FAASFLOW_GATEWAY_PORT", platform.url.rsplit(":", 1)[1])
    monkeypatch.setenv("FAASFLOW_GATEWAY_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("FAASFLOW_STATE_DIR", str(platform.state_dir))
    runner = CliRunner()

    created = runner.invoke(cli, ["fn", "new", unique, "--lang", "python"])
    assert created.exit_code == 0, created.output
    deployed = runner.invoke(cli, ["fn", "deploy", unique, "--json"])
    assert deployed.exit_code == 0, deployed.output
    spec = json.loads(deployed.output[deployed.output.index("{"):])
    assert spec["image"].startswith(f"faasflow-fn/{unique}:")

    response = platform.anonymous.post(f"/function/{unique}", json={"name": "Ada"})
    assert response.status_code == 200, response.text
    logs = runner.invoke(cli, ["fn", "logs", unique])
    assert logs.exit_code == 0, logs.output
    assert "succeeded" in logs.output
