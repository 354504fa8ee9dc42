"""A misbehaving function yields a Result that says why; a missing broker yields 503."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import docker
import pytest
from aiokafka import AIOKafkaProducer

from pipeline.ids import invocation_id, new_event_id
from pipeline.records import Event, Invocation, dumps
from tests.integration.conftest import KafkaContainer, free_port
from tests.integration.platform import Platform


@pytest.fixture
def misbehaving(platform: Platform, unique: str, test_images: dict[str, str]) -> dict:
    """Each test image deployed and subscribed to the test's own source."""
    platform.deploy(f"{unique}-fail", test_images["fail"])
    platform.deploy(f"{unique}-slow", test_images["sleep"], timeout_s=1.5, env={"SLEEP_S": "30"})
    platform.deploy(f"{unique}-oom", test_images["oom"], memory_mb=32)
    for name in ("fail", "slow", "oom"):
        platform.subscribe(f"{unique}-{name}", unique)
    return platform.webhook("faults", unique)


def test_crash_timeout_and_oom_each_give_a_final_result(
    platform: Platform, unique: str, misbehaving: dict
) -> None:
    event_id = platform.deliver(misbehaving, b"payload")
    results = {r["function"].removeprefix(f"{unique}-"): r for r in platform.results(event_id)}

    assert results["fail"]["status"] == "failed"
    assert results["fail"]["exit_code"] == 3
    assert results["fail"]["error"] == "exited with code 3"
    assert "bad input" in results["fail"]["logs"]

    assert results["slow"]["status"] == "timeout"
    assert "timed out after 1.5s" in results["slow"]["error"]
    assert results["slow"]["timings"]["duration_s"] < 10

    assert results["oom"]["status"] == "failed"
    assert "out of memory" in results["oom"]["error"]


def test_containers_are_removed_after_every_outcome(
    platform: Platform, unique: str, misbehaving: dict
) -> None:
    event_id = platform.deliver(misbehaving, b"payload")
    assert len(platform.results(event_id)) == 3
    client = docker.from_env()
    leftovers = client.containers.list(all=True, filters={"label": "faasflow.function"})
    assert not [c for c in leftovers if c.labels["faasflow.function"].startswith(unique)]
    client.close()


def test_sync_invoke_reports_failure_and_timeout(
    platform: Platform, unique: str, misbehaving: dict
) -> None:
    failed = platform.anonymous.post(f"/function/{unique}-fail", content=b"x")
    assert failed.status_code == 500  # as OpenFaaS answers: plain text, error then logs
    assert failed.headers["content-type"].startswith("text/plain")
    assert "bad input" in failed.text

    timed_out = platform.anonymous.post(f"/function/{unique}-slow", content=b"x")
    assert timed_out.status_code == 504
    assert "timed out" in timed_out.text
    assert timed_out.headers["x-call-id"]


def test_an_invocation_of_a_deleted_function_fails_saying_why(
    kafka: KafkaContainer, platform: Platform, unique: str
) -> None:
    """An invocation queued before its function was deleted still gets a final Result, and
    is dead-lettered (it can be redriven once the function is back)."""
    event = Event(id=new_event_id(), source=unique, type="test", data=b"x")
    invocation = Invocation(id=invocation_id(unique, event, unique), function=unique,
                            event=event, source=unique)

    async def enqueue() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(f"{platform.prefix}.invocations",
                                         dumps(invocation.to_dict()), key=unique.encode())
        finally:
            await producer.stop()

    asyncio.run(enqueue())
    (result,) = platform.results(event.id)

    assert result["status"] == "failed"
    assert result["error"] == f"function {unique!r} does not exist"
    [letter] = platform.api.get("/v1/deadletters", params={"function": unique}).json()
    assert letter["key"] == invocation.id
    assert letter["reason"] == "unknown_function"
    assert letter["invocation"]["id"] == invocation.id


def test_deleting_a_function_deletes_its_subscriptions(platform: Platform, unique: str) -> None:
    platform.deploy(unique, "faasflow/echo:latest")
    platform.deploy(f"{unique}-other", "faasflow/echo:latest")
    platform.subscribe(unique, unique)
    kept = platform.subscribe(f"{unique}-other", unique)

    assert platform.api.delete(f"/v1/functions/{unique}").status_code == 204

    assert platform.api.get("/v1/subscriptions").json() == [kept]


def test_webhook_answers_503_when_the_broker_is_down(tmp_path: Path, unique: str) -> None:
    broker = KafkaContainer().start()
    edge = Platform(broker.bootstrap, unique, free_port(), tmp_path)
    try:
        edge.start_gateway()
        hook = edge.webhook("down", unique)
        assert edge.anonymous.post(hook["url"], content=b"before").status_code == 202

        broker.stop()
        started = time.monotonic()
        response = edge.anonymous.post(hook["url"], content=b"during")

        assert response.status_code == 503
        assert response.json()["error"]["code"] == "broker_unavailable"
        assert time.monotonic() - started < 15
        health = edge.anonymous.get("/healthz")  # it answers, and says it is not ready
        assert health.status_code in (200, 503)
        assert health.status_code == 200 or health.json()["error"]["code"] == "not_ready"
    finally:
        edge.stop()
