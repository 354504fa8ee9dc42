"""OpenFaaS's documents mapped onto faasflow's: memory quantities, the deployment as a
FunctionSpec, the function status shape, the ``topic`` annotation, and the classic
watchdog's ``Http_*`` variables for an HTTP call."""

from __future__ import annotations

import pytest

from pipeline.calls import HTTP_EXTENSION, HttpCall, canonical, watchdog_env
from pipeline.errors import InvalidRequest
from pipeline.gateway.compat.openfaas import (
    FunctionDeployment,
    duration_s,
    memory_mb,
    status,
    topics,
)
from pipeline.records import Event
from pipeline.settings import RuntimeSettings


@pytest.mark.parametrize(("quantity", "mb"), [
    ("128Mi", 128), ("1Gi", 1024), ("0.5Gi", 512), ("1G", 954), ("512M", 489),
    ("134217728", 128), ("65536Ki", 64), (" 256Mi ", 256), ("100000k", 96),
])
def test_memory_quantities_are_kubernetes_units_in_whole_mib(quantity: str, mb: int) -> None:
    assert memory_mb(quantity) == mb


@pytest.mark.parametrize(("quantity", "says"), [
    ("128m", "did you mean Mi"), ("lots", "not a quantity"), ("-1Mi", "not a quantity"),
    ("1Mi", "give 6 to 65536"), ("1Ti", "give 6 to 65536"), ("", "not a quantity"),
    ("12 Mi", "not a quantity"),
])
def test_a_bad_memory_quantity_says_why(quantity: str, says: str) -> None:
    with pytest.raises(InvalidRequest, match=says):
        memory_mb(quantity)


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("1m30s", 90), ("500ms", 0.5), ("2h", 7200), ("45", 45), ("1.5s", 1.5),
    ("0", 0), ("0s", 0),
])
def test_watchdog_durations(text: str, seconds: float) -> None:
    assert duration_s(text) == seconds


@pytest.mark.parametrize("text", ["soon", "30 s", "1d", "s", "-5s", "30s!"])
def test_a_bad_watchdog_duration_is_refused(text: str) -> None:
    with pytest.raises(InvalidRequest, match="exec_timeout"):
        duration_s(text)


def test_exec_timeout_is_the_functions_timeout() -> None:
    def timeout(env: dict[str, str]) -> float:
        return FunctionDeployment.model_validate(
            {"service": "f", "image": "i", "envVars": env}).spec(RuntimeSettings()).timeout_s

    assert timeout({"exec_timeout": "1m"}) == 60
    assert timeout({"exec_timeout": "0s"}) == timeout({}) == RuntimeSettings().default_timeout_s


def test_a_deployment_becomes_a_function_spec() -> None:
    defaults = RuntimeSettings()
    spec = FunctionDeployment.model_validate({
        "service": "hello", "image": "faasflow/echo:latest",
        "envProcess": "python3 -c 'print(1)'", "envVars": {"A": "1"},
        "secrets": ["api-key"], "labels": {"team": "x"}, "annotations": {"topic": "a"},
        "limits": {"memory": "64Mi", "cpu": "100m"}, "requests": {"memory": "32Mi"},
        "readOnlyRootFilesystem": False, "network": "func_functions", "registryAuth": "",
    }).spec(defaults)

    assert spec.command == ("python3", "-c", "print(1)")
    assert (spec.memory_mb, spec.timeout_s) == (64, defaults.default_timeout_s)
    assert dict(spec.env) == {"A": "1"}
    assert dict(spec.secrets) == {"api-key": "api-key"}
    assert (dict(spec.labels), dict(spec.annotations)) == ({"team": "x"}, {"topic": "a"})


def test_a_bare_deployment_takes_faasflows_defaults() -> None:
    defaults = RuntimeSettings()
    spec = FunctionDeployment.model_validate(
        {"service": "f", "image": "i", "envProcess": "", "limits": {"memory": ""},
         "labels": None, "annotations": None}).spec(defaults)

    assert spec.command is None
    assert spec.memory_mb == defaults.default_memory_mb
    assert (dict(spec.labels), dict(spec.annotations), dict(spec.env)) == ({}, {}, {})


def test_an_unbalanced_quote_in_env_process_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="envProcess"):
        FunctionDeployment.model_validate(
            {"service": "f", "image": "i", "envProcess": "sh -c 'x"}).spec(RuntimeSettings())


def test_the_status_has_openfaas_shape() -> None:
    spec = FunctionDeployment.model_validate({
        "service": "hello", "image": "faasflow/echo:latest", "envProcess": "sh -c 'cat -'",
        "secrets": ["b", "a"], "labels": {"l": "1"}, "annotations": {"topic": "t"},
        "limits": {"memory": "1Gi"}}).spec(RuntimeSettings())

    shown = status(spec, 7)

    assert shown == {
        "name": "hello", "image": "faasflow/echo:latest", "envProcess": "sh -c 'cat -'",
        "envVars": {}, "secrets": ["a", "b"], "labels": {"l": "1"},
        "annotations": {"topic": "t"}, "limits": {"memory": "1024Mi"},
        "readOnlyRootFilesystem": True, "invocationCount": 7, "replicas": 1,
        "availableReplicas": 1, "createdAt": spec.created_at,
    }
    assert status(FunctionDeployment.model_validate({"service": "f", "image": "i"}).spec(
        RuntimeSettings()), 0)["envProcess"] == ""


def test_the_topic_annotation_names_sources() -> None:
    assert topics({"topic": "orders, payments,orders,"}) == ["orders", "payments"]
    assert topics({"other": "x"}) == topics(None) == topics({"topic": " "}) == []
    with pytest.raises(InvalidRequest):
        topics({"topic": "ok,Not A Source!"})


def test_an_http_call_gives_the_classic_watchdogs_variables() -> None:
    call = HttpCall(method="PATCH", path="/a/b", query="x=1&y=2",
                    headers={"x-custom-thing": "yes", "content-type": "text/plain",
                             "authorization": "Bearer secret", "cookie": "s=1"})
    event = Event(id="e", source="invoke", type="t", datacontenttype="text/plain",
                  extensions=call.extension())

    env = watchdog_env(event)

    assert env == {"Http_Method": "PATCH", "Http_Path": "/a/b", "Http_Query": "x=1&y=2",
                   "Http_X_Custom_Thing": "yes", "Http_Content_Type": "text/plain",
                   "Http_ContentType": "text/plain"}
    assert HttpCall.of(event) == HttpCall("PATCH", "/a/b", "x=1&y=2", {
        "x-custom-thing": "yes", "content-type": "text/plain"})


def test_events_from_elsewhere_give_no_http_variables() -> None:
    assert watchdog_env(Event(id="e", source="s", type="t")) == {}
    made_up = Event(id="e", source="s", type="t", extensions={HTTP_EXTENSION: "{not json"})
    assert watchdog_env(made_up) == {}
    assert watchdog_env(Event(id="e", source="s", type="t",
                              extensions={HTTP_EXTENSION: '{"method": "GET"}'})) == {}


def test_header_names_are_written_as_go_writes_them() -> None:
    assert canonical("x-call-id") == "X-Call-Id"
    assert canonical("CONTENT-TYPE") == "Content-Type"
