"""The Fn Project's HTTP API on a running gateway and worker, driven with plain HTTP as the
``fn`` CLI sends it: the tutorial flow (app, fn, trigger, invoke, list, update, delete) over
v2, the older v1 routes, and an Fn fn used as any faasflow function (invoked by name,
subscribed to a webhook's events). Fns run the real Python FDK's hello-world."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.conftest import KafkaContainer, started
from tests.integration.fn_support import build_fdk_images
from tests.integration.platform import TOKEN, Platform

pytestmark = pytest.mark.integration

ULID_LENGTH = 26


@pytest.fixture(scope="module")
def fn_platform(kafka: KafkaContainer, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[Platform]:
    """A gateway and a worker shared by this module's tests (each uses apps of its own)."""
    with started(kafka, tmp_path_factory.mktemp("fn")) as running:
        yield running


@pytest.fixture(scope="module")
def hello(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_fdk_images(tmp_path_factory.mktemp("fdk"))["hello"]


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def fails(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"message"}, body
    return str(body["message"])


def test_the_fn_tutorial_flow(fn_platform: Platform, hello: str) -> None:
    api, name = fn_platform.api, f"a{uuid.uuid4().hex[:8]}"
    app = ok(api.post("/v2/apps", json={"name": name, "config": {"LEVEL": "app"}}))
    assert (len(app["id"]), app["name"]) == (ULID_LENGTH, name)
    assert fails(api.post("/v2/apps", json={"name": name}), 409) == "App already exists"

    fn = ok(api.post("/v2/fns", json={"app_id": app["id"], "name": "hello", "image": hello,
                                      "memory": 64, "config": {"LEVEL": "fn"}}))
    assert (fn["app_id"], fn["memory"], fn["timeout"], fn["config"]) == (
        app["id"], 64, 30, {"LEVEL": "fn"})
    assert fn["annotations"]["fnproject.io/fn/invokeEndpoint"].endswith(f"/invoke/{fn['id']}")
    trigger = ok(api.post("/v2/triggers", json={"name": "hello", "app_id": app["id"],
                                                "fn_id": fn["id"], "type": "http",
                                                "source": "/hello"}))
    assert trigger["annotations"]["fnproject.io/trigger/httpEndpoint"].endswith(
        f"/t/{name}/hello")

    # invoked as `fn invoke` does, and through the trigger, without credentials
    anonymous = fn_platform.anonymous
    invoked = anonymous.post(f"/invoke/{fn['id']}", json={"name": "Fn"})
    assert ok(invoked) == {"message": "Hello Fn"}
    assert invoked.headers["fn-call-id"]
    assert ok(anonymous.post(f"/t/{name}/hello", content=b"")) == {"message": "Hello World"}

    # the same function on faasflow's own API: its name, its environment
    spec = ok(api.get(f"/v1/functions/{name}-hello"))
    assert (spec["contract"], spec["mode"], spec["env"]) == ("fn", "warm", {"LEVEL": "fn"})
    assert ok(anonymous.post(f"/function/{name}-hello", json={"name": "faasflow"})) == {
        "message": "Hello faasflow"}

    # updates: Fn's merge of config (an empty value removes a key), names immutable
    updated = ok(api.put(f"/v2/fns/{fn['id']}", json={"config": {"LEVEL": "", "X": "1"},
                                                      "timeout": 20}))
    assert (updated["config"], updated["timeout"]) == ({"X": "1"}, 20)
    assert ok(api.get(f"/v1/functions/{name}-hello"))["env"] == {"LEVEL": "app", "X": "1"}
    fails(api.put(f"/v2/fns/{fn['id']}", json={"name": "other"}), 409)
    assert ok(api.get("/v2/fns", params={"app_id": app["id"]}))["items"] == [
        ok(api.get(f"/v2/fns/{fn['id']}"))]

    # deletes: the trigger, then the app with its fn
    ok(api.delete(f"/v2/triggers/{trigger['id']}"), 204)
    assert fails(anonymous.post(f"/t/{name}/hello"), 404) == "Trigger not found"
    ok(api.delete(f"/v2/apps/{app['id']}"), 204)
    assert fails(api.get(f"/v2/apps/{app['id']}"), 404) == "App not found"
    assert fails(api.get(f"/v2/fns/{fn['id']}"), 404) == "Fn not found"
    assert fails(anonymous.post(f"/invoke/{fn['id']}"), 404) == "Fn not found"
    assert api.get(f"/v1/functions/{name}-hello").status_code == 404


def test_listings_come_in_pages(fn_platform: Platform) -> None:
    api, prefix = fn_platform.api, f"p{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}-{i}" for i in range(3)]
    for name in names:
        ok(api.post("/v2/apps", json={"name": name}))

    seen, cursor, pages = [], None, 0
    while True:
        page = ok(api.get("/v2/apps", params={"per_page": 2, **({"cursor": cursor}
                                                                 if cursor else {})}))
        seen += [app["name"] for app in page["items"]]
        pages += 1
        if "next_cursor" not in page:
            break
        cursor = page["next_cursor"]
    assert [n for n in seen if n.startswith(prefix)] == names
    assert seen == sorted(seen)
    assert pages >= 2
    assert ok(api.get("/v2/apps", params={"name": names[1]}))["items"][0]["name"] == names[1]


def test_fn_errors(fn_platform: Platform, hello: str) -> None:
    api = fn_platform.api
    missing = base64.b32encode(b"0" * 16).decode()[:ULID_LENGTH]
    assert fails(api.get(f"/v2/apps/{missing}"), 404) == "App not found"
    assert fails(api.post("/v2/fns", json={"app_id": missing, "name": "f", "image": hello}),
                 404) == "App not found"
    assert fails(api.post("/v2/apps", content=b"{not json",
                          headers={"Content-Type": "application/json"}), 400)
    assert fails(api.post("/v2/apps", json={}), 400) == "Invalid request: name: Field required"
    assert fails(api.post("/v2/apps", json={"name": "Upper Case"}), 400)
    assert fails(api.get("/v2/fns"), 400)  # app_id is required
    assert fails(fn_platform.anonymous.get("/v2/apps"), 401)
    basic = httpx.BasicAuth("admin", TOKEN)
    assert fn_platform.anonymous.get("/v2/apps", auth=basic).status_code == 200
    assert fails(fn_platform.anonymous.post("/t/nope/path"), 404) == "App not found"


def test_v1_routes(fn_platform: Platform, hello: str) -> None:
    api, name = fn_platform.api, f"r{uuid.uuid4().hex[:8]}"
    created = ok(api.post("/v1/apps", json={"app": {"name": name}}))
    assert created["app"]["name"] == name
    fails(api.post("/v1/apps", json={"app": {"name": name}}), 409)
    route = ok(api.post(f"/v1/apps/{name}/routes", json={"route": {
        "path": "/hello", "image": hello, "format": "http-stream", "memory": 64}}))["route"]
    assert (route["path"], route["format"], route["memory"]) == ("/hello", "http-stream", 64)
    # Fn's "default" format: the body on stdin, the output from stdout, a container a call
    ok(api.post(f"/v1/apps/{name}/routes", json={"route": {"path": "/echo",
                                                           "image": "faasflow/echo:latest"}}))

    assert ok(fn_platform.anonymous.post(f"/r/{name}/hello", json={"name": "v1"})) == {
        "message": "Hello v1"}
    echoed = fn_platform.anonymous.post(f"/r/{name}/echo", content=b"ping")
    assert (echoed.status_code, echoed.content) == (200, b"ping")
    listed = ok(api.get(f"/v1/apps/{name}/routes"))["routes"]
    assert [r["path"] for r in listed] == ["/echo", "/hello"]
    patched = ok(api.patch(f"/v1/apps/{name}/routes/hello", json={"route": {"timeout": 10}}))
    assert patched["route"]["timeout"] == 10
    assert ok(api.delete(f"/v1/apps/{name}/routes/echo")) == {"message": "Route deleted"}
    assert fails(fn_platform.anonymous.post(f"/r/{name}/echo"), 404) == "Route not found"
    assert fails(api.get(f"/v1/apps/{name}/routes/echo"), 404) == "Route not found"
    ok(api.delete(f"/v1/apps/{name}"))
    assert fails(api.get(f"/v1/apps/{name}"), 404) == "App not found"


def test_an_fn_fn_runs_for_webhook_events(fn_platform: Platform, hello: str) -> None:
    api, name = fn_platform.api, f"w{uuid.uuid4().hex[:8]}"
    app = ok(api.post("/v2/apps", json={"name": name}))
    ok(api.post("/v2/fns", json={"app_id": app["id"], "name": "hello", "image": hello,
                                 "memory": 64}))
    fn_platform.subscribe(f"{name}-hello", name)
    hook = fn_platform.webhook(name, name)

    event_id = fn_platform.deliver(hook, b'{"name": "kafka"}', "application/json")
    (result,) = fn_platform.results(event_id)

    assert result["status"] == "succeeded", result
    output = api.get(f"/v1/invocations/{result['invocation_id']}")
    assert "Hello kafka" in output.text, output.text
