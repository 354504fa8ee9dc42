"""OpenFaaS's gateway API on the real broker, Docker Engine, gateway and worker, with the
plain HTTP calls OpenFaaS's docs and faas-cli make: deploy with ``envProcess``, list,
invoke with a path and a query, async with a callback, update, a ``topic`` annotation
that makes a webhook's events run the function, delete; and the ways each can fail."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.callback_receiver import receiving
from tests.integration.conftest import KafkaContainer, started
from tests.integration.platform import TOKEN, Platform, wait_for

pytestmark = pytest.mark.integration

IMAGE = "faasflow/hello:latest"  # its own command greets: envProcess must replace it


@pytest.fixture(scope="module")
def faas(kafka: KafkaContainer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """One gateway and worker for the module, allowed to call back to this machine."""
    with started(kafka,
                 tmp_path_factory.mktemp("openfaas"),
                 FAASFLOW_CALLBACKS_ALLOW_PRIVATE="true") as running:
        yield running


@pytest.fixture(scope="module")
def admin(faas: Platform) -> Iterator[httpx.Client]:
    """What faas-cli sends: Basic auth as admin, the token as password."""
    with httpx.Client(base_url=faas.url, timeout=60, auth=("admin", TOKEN)) as client:
        yield client


def deployment(name: str, **fields: Any) -> dict[str, Any]:
    return {"service": name, "image": IMAGE, "envProcess": "cat", **fields}


def plain(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/plain"), response.text
    return response.text


def test_the_hello_world_flow(faas: Platform, admin: httpx.Client, unique: str) -> None:
    deployed = admin.post("/system/functions", json=deployment(
        unique, envVars={"GREETING": "hi"}, labels={"team": "docs"},
        annotations={"owner": "ada"}, limits={"memory": "64Mi"}, requests={"memory": "32Mi"},
        readOnlyRootFilesystem=True))
    assert deployed.status_code == 202, deployed.text

    (listed,) = [f for f in admin.get("/system/functions").json() if f["name"] == unique]
    assert listed | {"createdAt": None} == {
        "name": unique, "image": IMAGE, "envProcess": "cat", "envVars": {"GREETING": "hi"},
        "secrets": [], "labels": {"team": "docs"}, "annotations": {"owner": "ada"},
        "limits": {"memory": "64Mi"}, "readOnlyRootFilesystem": True, "invocationCount": 0,
        "replicas": 1, "availableReplicas": 1, "createdAt": None}

    # the classic watchdog's echo: cat answers the body, whatever the path and query
    answer = faas.anonymous.post(f"/function/{unique}/some/path?x=1", content=b"Hello OpenFaaS")
    assert answer.status_code == 200, answer.text
    assert answer.text == "Hello OpenFaaS"
    assert float(answer.headers["X-Duration-Seconds"]) > 0
    assert abs(int(answer.headers["X-Start-Time"]) - time.time_ns()) < 60e9  # Unix ns
    ident = answer.headers["X-Call-Id"]
    assert faas.api.get(f"/v1/invocations/{ident}").json()["output"] == "Hello OpenFaaS"

    # an update: env prints the request as the watchdog gives it
    updated = admin.put("/system/functions", json=deployment(unique, envProcess="env"))
    assert updated.status_code == 200, updated.text
    shown = admin.get(f"/system/function/{unique}").json()
    assert (shown["envProcess"], shown["labels"], shown["envVars"]) == ("env", {}, {})
    env = faas.api.get(f"/function/{unique}/orders/42?verbose=1&sort=asc",
                       headers={"X-Tenant": "acme"}).text.splitlines()
    assert {"Http_Method=GET", "Http_Path=/orders/42", "Http_Query=verbose=1&sort=asc",
            "Http_X_Tenant=acme"} <= set(env), env
    assert not [line for line in env if TOKEN in line or "Authorization" in line]
    assert "Http_Method=DELETE" in faas.anonymous.delete(f"/function/{unique}").text

    # async: 202 at once, the Result posted to the callback URL
    with receiving(200) as receiver:
        queued = faas.anonymous.post(f"/async-function/{unique}/later?n=2", content=b"x",
                                     headers={"X-Callback-Url": receiver.url()})
        assert queued.status_code == 202, queued.text
        (post,) = wait_for(receiver.posts, timeout_s=60) or [None]
    assert post is not None, faas.log("worker")[-3000:]
    called = json.loads(post.body)
    assert called["invocation_id"] == post.headers["x-call-id"] == queued.headers["X-Call-Id"]
    assert called["status"] == "succeeded"
    assert {"Http_Method=POST", "Http_Path=/later", "Http_Query=n=2"} <= set(
        called["output"].splitlines())

    counted = wait_for(lambda: (n := admin.get(f"/system/function/{unique}").json()
                                ["invocationCount"]) >= 4 and n, timeout_s=30)
    assert counted == 4

    deleted = admin.request("DELETE", "/system/functions", json={"functionName": unique})
    assert deleted.status_code == 200, deleted.text
    assert "does not exist" in plain(admin.get(f"/system/function/{unique}"), 404)
    plain(faas.anonymous.post(f"/function/{unique}", content=b"x"), 404)
    assert unique not in {f["name"] for f in admin.get("/system/functions").json()}


def subscribed(faas: Platform, function: str) -> set[str]:
    return {s["source"] for s in faas.api.get("/v1/subscriptions").json()
            if s["function"] == function}


def test_the_topic_annotation_subscribes_the_function(
        faas: Platform, admin: httpx.Client, unique: str) -> None:
    hook = faas.webhook(unique, f"{unique}-orders")
    answer = admin.post("/system/functions", json=deployment(
        unique, annotations={"topic": f"{unique}-orders,{unique}-refunds"}))
    assert answer.status_code == 202, answer.text
    assert subscribed(faas, unique) == {f"{unique}-orders", f"{unique}-refunds"}

    event_id = faas.deliver(hook, b"order 1")
    (result,) = faas.results(event_id)
    assert (result["function"], result["status"], result["output"]) == (
        unique, "succeeded", "order 1")

    faas.subscribe(unique, f"{unique}-manual")  # made through /v1: the annotation's own only
    answer = admin.put("/system/functions", json=deployment(
        unique, annotations={"topic": f"{unique}-refunds"}))
    assert answer.status_code == 200, answer.text
    assert subscribed(faas, unique) == {f"{unique}-refunds", f"{unique}-manual"}
    assert faas.results(faas.deliver(hook, b"order 2"), wait_s=2) == []

    admin.request("DELETE", "/system/functions", json={"functionName": unique})
    assert subscribed(faas, unique) == set()


def test_secrets_made_as_faas_cli_makes_them(
        faas: Platform, admin: httpx.Client, unique: str) -> None:
    name = unique.replace("-", "_")
    assert admin.post("/system/secrets", json={"name": name, "value": "s3cret"}
                      ).status_code == 201
    assert "already exists" in plain(admin.post("/system/secrets", json={
        "name": name, "value": "x"}), 409)
    assert {"name": name} in admin.get("/system/secrets").json()
    admin.post("/system/functions", json=deployment(
        unique, secrets=[name], envProcess=f"sh -c 'test \"${name}\" = s3cret && echo same'"),
    ).raise_for_status()

    assert faas.anonymous.post(f"/function/{unique}").text == "same\n"
    assert "used by" in plain(admin.request("DELETE", "/system/secrets", json={"name": name}), 409)
    assert admin.put("/system/secrets", json={"name": name, "value": "other"}).status_code == 200
    assert wait_for(lambda: faas.anonymous.post(f"/function/{unique}").status_code == 500)

    admin.request("DELETE", "/system/functions", json={"functionName": unique})
    assert admin.request("DELETE", "/system/secrets", json={"name": name}).status_code == 204
    assert {"name": name} not in admin.get("/system/secrets").json()
    plain(admin.put("/system/secrets", json={"name": name, "value": "x"}), 404)


def test_an_openfaas_images_fprocess_runs_without_its_watchdog(
        faas: Platform, admin: httpx.Client, test_images: dict[str, str], unique: str) -> None:
    image = test_images["watchdog"]
    answer = admin.post("/system/functions", json={"service": unique, "image": image})
    assert answer.status_code == 202, answer.text

    assert admin.get(f"/system/function/{unique}").json()["envProcess"] == "tr a-z A-Z"
    assert faas.anonymous.post(f"/function/{unique}", content=b"shout").text == "SHOUT"
    refused = admin.post("/system/functions", json={"service": f"{unique}-http",
                                                    "image": test_images["watchdog-http"]})
    assert "http mode" in plain(refused, 400)
    given = admin.post("/system/functions", json={
        "service": f"{unique}-http", "image": test_images["watchdog-http"], "envProcess": "cat"})
    assert given.status_code == 202, given.text


def test_a_warm_function_gets_the_request_too(
        faas: Platform, test_images: dict[str, str], unique: str) -> None:
    """The warm exec mode (the watchdog's fork per request) gives the same variables."""
    faas.deploy(unique, test_images["printenv"], mode="warm")

    env = faas.anonymous.put(f"/function/{unique}/items/7?full=yes", content=b"{}",
                             headers={"Content-Type": "application/json"}).text.splitlines()

    assert {"Http_Method=PUT", "Http_Path=/items/7", "Http_Query=full=yes",
            "Http_Content_Type=application/json", "Http_ContentType=application/json",
            "FAASFLOW_MODE=warm"} <= set(env), env


def test_a_failing_function_is_a_500_with_its_error(
        faas: Platform, admin: httpx.Client, unique: str) -> None:
    admin.post("/system/functions", json=deployment(
        unique, envProcess="sh -c 'echo broken input >&2; exit 3'")).raise_for_status()

    failed = faas.anonymous.post(f"/function/{unique}", content=b"x")

    assert "broken input" in plain(failed, 500)
    assert failed.headers["X-Call-Id"]


def test_deploys_that_are_refused(faas: Platform, admin: httpx.Client, unique: str) -> None:
    def refused(body: Any, status: int = 400, method: str = "POST", **kwargs: Any) -> str:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return plain(admin.request(method, "/system/functions", content=content,
                                   headers={"Content-Type": "application/json"}, **kwargs),
                     status)

    assert "invalid request" in refused(b'{"service": "x", ')
    assert "image" in refused({"service": unique})
    assert "service" in refused({"image": IMAGE})
    assert "not present" in refused(deployment(unique, image="nowhere/missing:1"))
    assert "did you mean Mi" in refused(deployment(unique, limits={"memory": "128m"}))
    assert "not a quantity" in refused(deployment(unique, limits={"memory": "lots"}))
    assert "does not exist" in refused(deployment(unique, secrets=["no-such-secret"]))
    assert "at most" in refused(deployment(unique, envVars={"exec_timeout": "10h"}))
    assert "exec_timeout" in refused(deployment(unique, envVars={"exec_timeout": "soon"}))
    assert "source" in refused(deployment(unique, annotations={"topic": "Not A Topic!"}))
    assert "does not exist" in refused(deployment(unique), 404, "PUT")
    assert "does not exist" in refused({"functionName": unique}, 404, "DELETE")
    assert unique not in {f["name"] for f in admin.get("/system/functions").json()}

    assert admin.post("/system/functions", json=deployment(unique)).status_code == 202
    assert "already exists" in refused(deployment(unique), 409)  # PUT updates it


def test_system_needs_the_admin_credentials(faas: Platform, admin: httpx.Client) -> None:
    for method, path in (("GET", "/system/functions"), ("POST", "/system/functions"),
                         ("GET", "/system/info"), ("GET", "/system/function/x")):
        assert faas.anonymous.request(method, path).status_code == 401
        wrong = faas.anonymous.request(method, path, auth=("admin", "not-the-token"))
        assert wrong.status_code == 401
        assert "Basic" in wrong.headers["www-authenticate"]
    assert faas.anonymous.get("/system/info", auth=("root", TOKEN)).status_code == 401

    info = admin.get("/system/info").json()
    assert info["provider"]["provider"] == "faasflow"
    assert info["provider"]["orchestration"] == "docker"
    assert info["version"]["release"] == info["provider"]["version"]["release"]
    assert info["arch"]
    assert faas.anonymous.get("/healthz").status_code == 200  # what faas-cli's checks read


def test_unknown_functions_are_404_in_plain_text(faas: Platform, unique: str) -> None:
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        plain(faas.anonymous.request(method, f"/function/{unique}/x?y=1"), 404)
    plain(faas.anonymous.post(f"/async-function/{unique}"), 404)


def test_a_private_function_is_401_in_plain_text(
        faas: Platform, admin: httpx.Client, unique: str) -> None:
    faas.deploy(unique, "faasflow/echo:latest", public=False)  # (its command is cat)

    plain(faas.anonymous.post(f"/function/{unique}", content=b"x"), 401)
    plain(faas.anonymous.post(f"/async-function/{unique}", content=b"x"), 401)
    assert admin.post(f"/function/{unique}", content=b"ok").text == "ok"
