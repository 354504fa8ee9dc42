"""The OpenWhisk API (``/api/v1/namespaces/…``) driven by Apache OpenWhisk's own JavaScript
client (npm ``openwhisk``, installed by compose/setup.sh) against a real gateway and worker:
actions of each kind, blocking and non-blocking invocations, activations, triggers and rules,
and the same actions used through faasflow's own API."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.settings import Settings
from tests.integration.conftest import KafkaContainer, started
from tests.integration.platform import TOKEN, Platform, wait_for

CLIENT = Path(__file__).with_name("openwhisk_client.js")
NODE_MODULES = Settings().cache_dir / "node" / "node_modules"

pytestmark = pytest.mark.timeout(120)

GREETER = '''
def main(args):
    print("greeting", args.get("name"))
    return {"message": f"{args['greeting']}, {args.get('name', 'world')}!"}
'''
ADDER = 'function main(params) { console.log("adding"); return { sum: params.a + params.b }; }'
EXPORTED = ('exports.main = async (params) => '
            '({ upper: String(params.text).toUpperCase() + params.mark });')
THROWER = 'def main(args):\n    raise ValueError("no luck")\n'


class Client:
    """One node process running the OpenWhisk client; ``call`` is one client call."""

    def __init__(self, url: str, api_key: str) -> None:
        if not (NODE_MODULES / "openwhisk" / "package.json").exists():
            raise RuntimeError(f"npm's openwhisk is not in {NODE_MODULES}: run compose/setup.sh")
        self.process = subprocess.Popen(
            ["node", str(CLIENT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "NODE_PATH": str(NODE_MODULES), "OW_APIHOST": url,
                 "OW_API_KEY": api_key})

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
        self.process.stdin.flush()
        answer: dict[str, Any] = json.loads(self.process.stdout.readline())
        return answer

    def ok(self, op: str, **args: Any) -> Any:
        answer = self.call(op, **args)
        assert answer["ok"], answer
        return answer["value"]

    def close(self) -> None:
        self.process.terminate()
        self.process.communicate(timeout=10)  # and closes its pipes


@pytest.fixture(scope="module")
def faasflow(kafka: KafkaContainer, tmp_path_factory: pytest.TempPathFactory,
             ) -> Iterator[Platform]:
    with started(kafka, tmp_path_factory.mktemp("openwhisk")) as running:
        yield running


@pytest.fixture(scope="module")
def ow(faasflow: Platform) -> Iterator[Client]:
    client = Client(faasflow.url, f"{uuid.uuid4()}:{TOKEN}")
    yield client
    client.close()


def activation(ow: Client, ident: str) -> dict[str, Any]:
    """The activation once it is recorded (OpenWhisk's: 404 until the run ended)."""
    def found() -> dict[str, Any] | None:
        answer = ow.call("activations.get", name=ident)
        return answer["value"] if answer["ok"] else None
    record: dict[str, Any] = wait_for(found, timeout_s=45)
    return record


def annotation(record: dict[str, Any], key: str) -> Any:
    return next(a["value"] for a in record["annotations"] if a["key"] == key)


def test_a_python_action_runs_blocking_and_not(ow: Client, faasflow: Platform) -> None:
    name = f"greet-{uuid.uuid4().hex[:6]}"
    created = ow.ok("actions.create", name=name, action=GREETER, kind="python:3",
                    params={"greeting": "Hello"}, limits={"timeout": 10000, "memory": 128})
    assert created["exec"]["kind"] == "python:3"
    assert created["version"] == "0.0.1"
    assert {"key": "greeting", "value": "Hello"} in created["parameters"]
    again = ow.call("actions.create", name=name, action=GREETER, kind="python:3")
    assert (again["ok"], again["status"]) == (False, 409), again

    result = ow.ok("actions.invoke", name=name, params={"name": "Ada"}, blocking=True,
                   result=True)
    record = ow.ok("actions.invoke", name=name, params={"greeting": "Hi"}, blocking=True)
    queued = ow.ok("actions.invoke", name=name, params={"name": "Bob"})

    assert result == {"message": "Hello, Ada!"}
    assert len(record["activationId"]) == 32
    assert record["name"] == name
    assert record["namespace"] == "guest"
    assert record["duration"] >= 0
    assert record["response"] == {"status": "success", "statusCode": 0, "success": True,
                                  "result": {"message": "Hi, world!"}}
    assert annotation(record, "kind") == "python:3"
    assert annotation(record, "limits")["timeout"] == 10000
    assert annotation(record, "path") == f"guest/{name}"
    later = activation(ow, queued["activationId"])
    assert later["response"]["result"] == {"message": "Hello, Bob!"}
    assert later["start"] <= later["end"]
    assert annotation(later, "waitTime") >= 0
    logs = ow.ok("activations.logs", name=queued["activationId"])["logs"]
    assert any(line.endswith("stdout: greeting Bob") for line in logs), logs
    assert ow.ok("activations.result", name=queued["activationId"])["result"] == {
        "message": "Hello, Bob!"}
    listed = ow.ok("activations.list", name=name, limit=10)
    assert {a["activationId"] for a in listed} >= {record["activationId"],
                                                   queued["activationId"]}
    assert ow.ok("activations.list", name=name, limit=1, skip=1)[0]["activationId"] in {
        a["activationId"] for a in listed}
    got = ow.ok("actions.get", name=name)
    assert got["exec"]["code"] == GREETER
    updated = ow.ok("actions.update", name=name, action=GREETER, kind="python:3",
                    params={"greeting": "Hey"})
    assert updated["version"] == "0.0.2"
    assert name in {a["name"] for a in ow.ok("actions.list", limit=200)}
    ow.ok("actions.delete", name=name)
    assert ow.call("actions.get", name=name)["status"] == 404


def test_node_actions_declared_or_exported(ow: Client) -> None:
    adder, upper = (f"{n}-{uuid.uuid4().hex[:6]}" for n in ("add", "upper"))
    # the client's default kind: nodejs:default
    ow.ok("actions.create", name=adder, action=ADDER, params={"b": 10})
    ow.ok("actions.create", name=upper, action=EXPORTED, kind="nodejs:20", params={"mark": "!"})
    try:
        summed = ow.ok("actions.invoke", name=adder, params={"a": 2}, blocking=True)
        overridden = ow.ok("actions.invoke", name=adder, params={"a": 2, "b": 3},
                           blocking=True, result=True)
        shouted = ow.ok("actions.invoke", name=upper, params={"text": "ow"}, blocking=True,
                        result=True)
    finally:
        ow.call("actions.delete", name=adder)
        ow.call("actions.delete", name=upper)

    assert summed["response"]["result"] == {"sum": 12}
    assert overridden == {"sum": 5}
    assert annotation(summed, "kind") == "nodejs:default"
    assert any("stdout: adding" in line for line in summed["logs"])
    assert shouted == {"upper": "OW!"}


def test_a_blackbox_action_runs_a_local_image(ow: Client) -> None:
    name = f"echo-{uuid.uuid4().hex[:6]}"
    created = ow.ok("actions.create", name=name,
                    action={"exec": {"kind": "blackbox", "image": "faasflow/echo:latest"},
                            "parameters": [{"key": "fixed", "value": 1}]})
    try:
        echoed = ow.ok("actions.invoke", name=name, params={"x": "y"}, blocking=True,
                       result=True)
    finally:
        ow.ok("actions.delete", name=name)

    assert created["exec"] == {"kind": "blackbox", "binary": False,
                               "image": "faasflow/echo:latest"}
    assert echoed == {"fixed": 1, "x": "y"}


def test_a_rule_runs_its_action_when_its_trigger_fires(ow: Client) -> None:
    action, trigger, rule = (f"{n}-{uuid.uuid4().hex[:6]}" for n in ("act", "trig", "rule"))
    ow.ok("actions.create", name=action, action=GREETER, kind="python:3",
          params={"greeting": "Ahoy"})
    ow.ok("triggers.create", name=trigger, trigger={"parameters": [
        {"key": "name", "value": "trigger"}]})
    created = ow.ok("rules.create", name=rule, trigger=f"/_/{trigger}", action=f"/_/{action}")
    assert created["status"] == "active"
    assert created["trigger"] == {"name": trigger, "path": "guest"}
    try:
        fired = ow.ok("triggers.invoke", name=trigger, params={"name": "Eve"})
        fired_activation = activation(ow, fired["activationId"])
        ran = json.loads(fired_activation["logs"][0])
        assert ran["action"] == f"guest/{action}"
        assert ran["rule"] == f"guest/{rule}"
        assert activation(ow, ran["activationId"])["response"]["result"] == {
            "message": "Ahoy, Eve!"}
        assert fired_activation["response"]["result"] == {"name": "Eve"}

        assert ow.ok("rules.disable", name=rule)["status"] == "inactive"
        assert ow.ok("rules.get", name=rule)["status"] == "inactive"
        quiet = ow.ok("triggers.invoke", name=trigger, params={"name": "Nobody"})
        assert not (quiet or {}).get("activationId")  # 204: no active rule, nothing ran
        assert ow.ok("triggers.get", name=trigger)["rules"][f"guest/{rule}"]["status"] == (
            "inactive")
        assert ow.ok("rules.enable", name=rule)["status"] == "active"
        assert rule in {r["name"] for r in ow.ok("rules.list")}
        ow.ok("actions.delete", name=action)  # its subscriptions go with it
        orphaned = ow.ok("triggers.invoke", name=trigger, params={"name": "Nobody"})
        assert not (orphaned or {}).get("activationId")
    finally:
        ow.call("rules.delete", name=rule)
        ow.call("triggers.delete", name=trigger)
        ow.call("actions.delete", name=action)
    assert ow.call("rules.get", name=rule)["status"] == 404
    assert ow.call("triggers.get", name=trigger)["status"] == 404


def test_an_openwhisk_action_is_a_faasflow_function(ow: Client, faasflow: Platform) -> None:
    name, source = f"greet-{uuid.uuid4().hex[:6]}", f"src-{uuid.uuid4().hex[:6]}"
    ow.ok("actions.create", name=name, action=GREETER, kind="python:3",
          params={"greeting": "Hello"})
    try:
        direct = faasflow.anonymous.post(f"/function/{name}",
                                         json={"greeting": "Hallo", "name": "Fn"})
        hook = faasflow.webhook(f"hook-{name}", source)
        faasflow.subscribe(name, source)
        event_id = faasflow.deliver(hook, b'{"greeting": "Hej", "name": "Hook"}',
                                    "application/json")
        results = faasflow.results(event_id)
    finally:
        ow.ok("actions.delete", name=name)

    assert direct.status_code == 200
    assert direct.json() == {"message": "Hallo, Fn!"}
    assert [json.loads(r["output"]) if isinstance(r["output"], str) else r["output"]
            for r in results] == [{"message": "Hej, Hook!"}]


def test_failures_answer_as_openwhisk_does(ow: Client, faasflow: Platform) -> None:
    assert ow.ok("namespaces.list") == ["guest"]
    missing = ow.call("actions.invoke", name="no-such-action", blocking=True)
    assert missing["status"] == 404
    assert set(missing["body"]) == {"error", "code"}
    unknown_kind = ow.call("actions.create", name="cobol", action="x", kind="cobol:85")
    assert unknown_kind["status"] == 400
    assert "kind" in unknown_kind["body"]["error"]
    malformed = faasflow.anonymous.put("/api/v1/namespaces/_/actions/broken",
                                       content=b'{"exec": ', auth=("guest", TOKEN),
                                       headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400
    assert set(malformed.json()) == {"error", "code"}
    wrong = Client(faasflow.url, f"guest:not-{TOKEN}")
    try:
        refused = wrong.call("actions.list")
    finally:
        wrong.close()
    assert refused["status"] == 401
    assert "error" in refused["body"]

    name = f"throw-{uuid.uuid4().hex[:6]}"
    ow.ok("actions.create", name=name, action=THROWER, kind="python:3")
    try:
        queued = ow.ok("actions.invoke", name=name)
        failed = activation(ow, queued["activationId"])
        blocking = ow.call("actions.invoke", name=name, blocking=True)
    finally:
        ow.ok("actions.delete", name=name)
    assert failed["response"]["success"] is False
    assert failed["response"]["status"] == "application error"
    assert "no luck" in failed["response"]["result"]["error"]
    assert blocking["status"] == 502
    assert blocking["body"]["response"]["statusCode"] == 1


def test_time_bounds_filter_the_activation_list(ow: Client) -> None:
    future = int((time.time() + 3600) * 1000)
    assert ow.ok("activations.list", since=future) == []
