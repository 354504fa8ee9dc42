"""The OpenWhisk API's pure mapping: kinds, activation ids and records, default parameters,
credentials and error answers."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from pipeline.errors import InvalidRequest
from pipeline.gateway.compat import openwhisk
from pipeline.gateway.compat.openwhisk import records
from pipeline.gateway.compat.openwhisk.edge import presented_token
from pipeline.records import Failure, Result, Status
from pipeline.specs import FunctionSpec, Language, Mode

INVOCATION = "0f8e2a34-5b6c-4d7e-8f90-a1b2c3d4e5f6"


def result(status: Status = Status.SUCCEEDED, output: bytes = b'{"ok":true}',
           failure: Failure | None = None, **fields: Any) -> Result:
    return Result(invocation_id=INVOCATION, event_id="e1", function="greet", status=status,
                  output=output, failure=failure, queued_at="2026-01-01T00:00:00.000000Z",
                  started_at="2026-01-01T00:00:00.250000Z",
                  finished_at="2026-01-01T00:00:01.250000Z", duration_s=1.0, **fields)


@pytest.mark.parametrize(("kind", "runtime"), [
    ("python:3", Language.PYTHON), ("python:3.11", Language.PYTHON),
    ("nodejs:default", Language.NODE), ("nodejs:20", Language.NODE), ("blackbox", None)])
def test_kinds_map_onto_runtimes(kind: str, runtime: Language | None) -> None:
    assert records.runtime_of(kind) is runtime


@pytest.mark.parametrize("kind", ["go:1.21", "python:2", "java:8", "sequence", "nodejs"])
def test_other_kinds_are_refused(kind: str) -> None:
    with pytest.raises(InvalidRequest, match="not supported"):
        records.runtime_of(kind)


def test_an_activation_id_is_the_invocation_id_without_dashes() -> None:
    ident = records.activation_id(INVOCATION)
    assert ident == "0f8e2a345b6c4d7e8f90a1b2c3d4e5f6"
    assert records.invocation_id_of(ident) == INVOCATION
    assert records.invocation_id_of("not-an-id") is None


@pytest.mark.parametrize(("done", "code", "value"), [
    (result(), records.SUCCESS, {"ok": True}),
    (result(output=b"[1,2]"), records.SUCCESS, [1, 2]),
    (result(output=b'{"error":"bad input","x":1}'), records.APPLICATION_ERROR,
     {"error": "bad input"}),
    (result(output=b'"text"'), records.DEVELOPER_ERROR,
     {"error": "The action did not return a dictionary."}),
    (result(Status.FAILED, b"", Failure.ERROR, error="ValueError: no"),
     records.APPLICATION_ERROR, {"error": "ValueError: no"}),
    (result(Status.FAILED, b"", Failure.START, error="SyntaxError"), records.DEVELOPER_ERROR,
     {"error": "SyntaxError"}),
    (result(Status.TIMEOUT, b"", Failure.TIMEOUT), records.DEVELOPER_ERROR,
     {"error": "The action exceeded its time limits of 5000 milliseconds."}),
    (result(Status.FAILED, b"", Failure.UNAVAILABLE, error="docker"), records.WHISK_ERROR,
     {"error": "docker"}),
])
def test_results_become_openwhisk_responses(done: Result, code: int, value: Any) -> None:
    assert records.response_of(done, 5000) == (code, value)


def test_an_activation_record_in_openwhisk_shape() -> None:
    spec = FunctionSpec(name="greet", image="x", image_digest="d", runtime=Language.PYTHON,
                        code="c", mode=Mode.WARM, timeout_s=5, memory_mb=128,
                        annotations=records.notes("python:3", "0.0.2", {}, {}, "main"))
    record = records.activation(result(logs="hi\nthere\n", init_s=0.3),
                                records.Action.of(spec), "guest")

    assert record["activationId"] == records.activation_id(INVOCATION)
    assert (record["name"], record["namespace"], record["version"]) == ("greet", "guest",
                                                                       "0.0.2")
    assert (record["end"] - record["start"], record["duration"]) == (1000, 1000)
    assert record["response"] == {"status": "success", "statusCode": 0, "success": True,
                                  "result": {"ok": True}}
    assert record["logs"] == ["2026-01-01T00:00:01.250000Z stdout: hi",
                              "2026-01-01T00:00:01.250000Z stdout: there"]
    notes = {a["key"]: a["value"] for a in record["annotations"]}
    assert notes["waitTime"] == 250
    assert notes["initTime"] == 300
    assert notes["kind"] == "python:3"
    assert notes["path"] == "guest/greet"
    assert notes["limits"] == {"timeout": 5000, "memory": 128, "logs": 10, "concurrency": 1}
    brief = records.activation(result(), None, "guest", docs=False)
    assert "logs" not in brief
    assert "response" not in brief
    assert brief["statusCode"] == 0


def test_default_parameters_merge_under_the_payload() -> None:
    assert records.merged({"a": 1, "b": 2}, {"b": 3}) == {"a": 1, "b": 3}
    assert records.merged({"a": 1}, None) == {"a": 1}
    assert records.merged({"a": 1}, [1]) == [1]


def test_a_python_action_gets_its_parameters_through_its_wrapper() -> None:
    source = "def handle(args):\n    return args\n"
    code, entry = records.with_parameters(Language.PYTHON, source, "handle", {"a": 1, "b": 2})
    scope: dict[str, Any] = {}
    exec(code, scope)

    assert scope[entry]({"b": 3}) == {"a": 1, "b": 3}
    assert scope[entry]("text") == "text"
    assert records.source_of(Language.PYTHON, code) == source
    assert records.with_parameters(Language.NODE, "x", "main", {}) == ("x", "main")
    with pytest.raises(InvalidRequest):
        records.with_parameters(Language.PYTHON, source, "not-python", {"a": 1})


def test_versions_count_updates() -> None:
    assert records.next_version("0.0.1") == "0.0.2"
    assert records.next_version("") == "0.0.1"


def basic(user_pass: str) -> str:
    return "Basic " + base64.b64encode(user_pass.encode()).decode()


def test_any_user_with_the_token_as_password() -> None:
    assert presented_token(basic("23bc46b1-71f6-4ed5-8c54-816aa4f8c502:tok")) == "tok"
    assert presented_token(basic("guest:tok")) == "tok"
    assert presented_token("Bearer tok") == "tok"
    assert presented_token(basic("no-colon")) is None
    assert presented_token("Basic !!!") is None
    assert presented_token(None) is None


async def test_errors_come_in_openwhisk_form() -> None:
    app = FastAPI()
    app.include_router(openwhisk.router)
    app.state.token, app.state.control = "tok", object()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        anonymous = await client.get("/api/v1/namespaces/_/actions")
        other = await client.get("/api/v1/namespaces/other/actions", auth=("guest", "tok"))
        malformed = await client.put("/api/v1/namespaces/_/actions/a", auth=("u", "tok"),
                                     content=b"{",
                                     headers={"Content-Type": "application/json"})
        kind = await client.put("/api/v1/namespaces/guest/actions/a", auth=("u", "tok"),
                                json={"exec": {"kind": "cobol:85", "code": "x"}})

    assert anonymous.status_code == 401
    assert set(anonymous.json()) == {"error", "code"}
    assert len(anonymous.json()["code"]) == 32
    assert other.status_code == 400
    assert "namespace" in other.json()["error"]
    assert malformed.status_code == 400
    assert set(malformed.json()) == {"error", "code"}
    assert kind.status_code == 400
    assert "kind" in kind.json()["error"]
