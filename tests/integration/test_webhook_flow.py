"""Webhook → Kafka → starter → executor → container → results log, and sync invoke."""

from __future__ import annotations

import base64
import json
import time

from tests.integration.platform import TOKEN, Platform


def test_webhook_event_runs_the_subscribed_function(platform: Platform, unique: str) -> None:
    platform.deploy(f"{unique}-hello", "faasflow/hello:latest")
    hook = platform.webhook("github", unique)
    platform.subscribe(f"{unique}-hello", unique)

    event_id = platform.deliver(hook, b"webhooks")
    (result,) = platform.results(event_id)

    assert result["status"] == "succeeded", result
    assert result["output"].strip() == "Hello, webhooks!"
    assert result["function"] == f"{unique}-hello"
    assert result["event_id"] == event_id
    assert result["exit_code"] == 0
    assert result["cold_start"] is True
    assert result["image_digest"].startswith("sha256:")
    timings = result["timings"]
    assert timings["queued_at"] <= timings["started_at"] <= timings["finished_at"]
    by_id = platform.api.get(f"/v1/invocations/{result['invocation_id']}")
    assert by_id.json() == {**result, "callbacks": []}


def test_one_event_fans_out_to_every_subscriber(platform: Platform, unique: str) -> None:
    for name, image in (("hello", "faasflow/hello:latest"), ("echo", "faasflow/echo:latest")):
        platform.deploy(f"{unique}-{name}", image)
        platform.subscribe(f"{unique}-{name}", unique)
    hook = platform.webhook("fanout", unique)

    payload = {"order": 42, "items": ["a", "b"]}
    event_id = platform.deliver(hook, json.dumps(payload).encode(), "application/json")
    results = {r["function"]: r for r in platform.results(event_id)}

    assert set(results) == {f"{unique}-hello", f"{unique}-echo"}
    assert all(r["status"] == "succeeded" for r in results.values())
    assert json.loads(results[f"{unique}-echo"]["output"]) == payload
    assert len({r["invocation_id"] for r in results.values()}) == 2


def test_source_created_after_the_worker_started(platform: Platform, unique: str) -> None:
    """The starter follows new event topics without a restart."""
    platform.deploy(f"{unique}-echo", "faasflow/echo:latest")
    for round_ in range(2):
        source = f"{unique}-{round_}"
        hook = platform.webhook("late", source)
        platform.subscribe(f"{unique}-echo", source)
        event_id = platform.deliver(hook, f"round {round_}".encode())
        (result,) = platform.results(event_id)
        assert result["output"] == f"round {round_}"


def test_binary_payload_reaches_the_function_unchanged(platform: Platform, unique: str) -> None:
    platform.deploy(f"{unique}-echo", "faasflow/echo:latest")
    platform.subscribe(f"{unique}-echo", unique)
    hook = platform.webhook("bin", unique)
    payload = bytes(range(256)) * 4

    event_id = platform.deliver(hook, payload, "application/octet-stream")
    (result,) = platform.results(event_id)

    assert "output_base64" in result
    assert base64.b64decode(result["output_base64"]) == payload


def test_sync_invoke_returns_output_and_logs_the_result(platform: Platform, unique: str) -> None:
    platform.deploy(f"{unique}-hello", "faasflow/hello:latest")

    response = platform.anonymous.post(f"/function/{unique}-hello", content=b"sync")

    assert response.status_code == 200
    assert response.text.strip() == "Hello, sync!"
    assert response.headers["content-type"].startswith("text/plain")
    call_id = response.headers["x-call-id"]
    assert float(response.headers["x-duration-seconds"]) > 0
    logged = platform.api.get(f"/v1/invocations/{call_id}")
    assert logged.status_code == 200
    assert logged.json()["status"] == "succeeded"


def test_management_answers_basic_auth_as_admin(platform: Platform) -> None:
    assert platform.anonymous.get("/v1/functions", auth=("admin", TOKEN)).status_code == 200
    assert platform.anonymous.get("/v1/functions", auth=("root", TOKEN)).status_code == 401
    assert platform.anonymous.get("/v1/functions").status_code == 401


def test_metrics_and_openapi(platform: Platform, unique: str) -> None:
    platform.anonymous.get("/healthz")
    assert platform.anonymous.get("/metrics").status_code == 401  # FAASFLOW_METRICS_PUBLIC
    metrics = platform.api.get("/metrics")
    assert metrics.status_code == 200
    line = 'faasflow_http_requests_total{method="GET",route="/healthz",status="200"}'
    assert line in metrics.text
    spec = platform.anonymous.get("/openapi.json").json()
    assert "/function/{name}" in spec["paths"]
    assert "/hooks/{ident}" in spec["paths"]


def test_sources_added_during_a_rebalance_are_followed(platform: Platform, unique: str) -> None:
    """Faust drops a subscription change that arrives mid-rebalance; the starter must
    notice and subscribe again."""
    platform.deploy(f"{unique}-echo", "faasflow/echo:latest")
    hooks = []
    for n in range(4):
        platform.subscribe(f"{unique}-echo", f"{unique}-{n}")
        hooks.append(platform.webhook(f"burst-{n}", f"{unique}-{n}"))
        time.sleep(0.3)  # the next change lands while the last one is rebalancing
    for n, hook in enumerate(hooks):
        event_id = platform.deliver(hook, f"burst {n}".encode())
        (result,) = platform.results(event_id, wait_s=30)
        assert result["output"] == f"burst {n}"
