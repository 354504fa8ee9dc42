"""Failure paths on the real broker and Docker Engine: no record stops the pipeline, every
failure is a final Result and a dead letter, and dead letters can be redriven."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from tests.integration.conftest import KafkaContainer, free_port, started
from tests.integration.platform import Platform, wait_for

MIB = 1024 * 1024


def produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    """Write records as any producer could, bypassing every check of faasflow's own."""
    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                    max_request_size=4 * MIB)
        await producer.start()
        try:
            for key, value in records:
                await producer.send_and_wait(topic, value, key=key)
        finally:
            await producer.stop()

    asyncio.run(send())



def output(result: dict[str, Any]) -> bytes:
    if "output_base64" in result:
        return base64.b64decode(result["output_base64"])
    return str(result.get("output", "")).encode()


@pytest.fixture
def roomy(kafka: KafkaContainer, tmp_path: Path) -> Iterator[Platform]:
    """A platform with the default size budget (1 MiB bodies), as users run it."""
    with started(kafka, tmp_path, FAASFLOW_MAX_PAYLOAD_BYTES=str(MIB)) as running:
        yield running


def test_a_body_just_under_the_limit_flows_and_no_worker_dies(roomy: Platform,
                                                              unique: str) -> None:
    """Before: a text body of about 999,800 bytes was answered 202, then every worker died
    writing its invocation (Faust's producer kept a 1,000,000-byte limit), and again at
    each restart. A body of quotes, which JSON escaping doubles, was another way past."""
    roomy.deploy(unique, "faasflow/echo:latest")
    hook = roomy.webhook("big", unique)
    roomy.subscribe(unique, unique)
    quotes = b'"' * 999_800

    big = roomy.deliver(hook, quotes)
    (result,) = roomy.results(big, wait_s=60)

    assert result["status"] == "succeeded", result["error"]
    assert output(result) == quotes
    assert roomy.worker is not None
    assert roomy.worker.poll() is None
    small = roomy.deliver(hook, b"after")
    assert output(roomy.results(small)[0]) == b"after"
    too_big = roomy.anonymous.post(hook["url"], content=b"x" * (MIB + 1))
    assert too_big.status_code == 413


def test_poison_records_are_dead_lettered_and_the_rest_flows(
    kafka: KafkaContainer, platform: Platform, unique: str
) -> None:
    platform.deploy(unique, "faasflow/echo:latest")
    hook = platform.webhook("poison", unique)
    platform.subscribe(unique, unique)
    platform.results(platform.deliver(hook, b"warm-up"))  # the starter follows the source
    events = f"{platform.prefix}.events.{unique}"
    produce(kafka.bootstrap, events, [
        (b"k1", b"\xff\xfe not JSON"),
        (b"k2", b'{"id": "no source or type"}'),
        (b"k3", b"[" * 100_000 + b"]" * 100_000),  # nested past any parser's stack
    ])
    produce(kafka.bootstrap, f"{platform.prefix}.invocations", [(b"k4", b"{}")])
    for view in ("registry", "results", "checkpoints", "connectors", "deliveries"):
        produce(kafka.bootstrap, f"{platform.prefix}.{view}", [  # (Kafka refuses no key)
            (b"function/poison", b"\xff not JSON"), (b"x", b"[" * 100_000), (b"y/z", b"{}")])
    worker = platform.worker
    assert worker is not None

    event_id = platform.deliver(hook, b"after the poison")

    (result,) = platform.results(event_id)
    assert output(result) == b"after the poison"
    assert worker.poll() is None
    assert platform.anonymous.get("/healthz").json()["status"] == "ok"

    def undecodable() -> list[dict[str, Any]]:
        found = platform.api.get("/v1/deadletters", params={"reason": "undecodable"})
        assert found.status_code == 200, found.text
        return list(found.json())

    # The views (registry, connectors, …) skip and count what they cannot read; the topics
    # agents work on (events, invocations, and results for callbacks) dead-letter it.
    letters = wait_for(lambda: len(undecodable()) >= 7 and undecodable())
    assert sorted(letter["origin"]["topic"] for letter in letters) == [
        events, events, events, f"{platform.prefix}.invocations",
        *[f"{platform.prefix}.results"] * 3]
    first = next(letter for letter in letters if letter["raw_size"] == len(b"\xff\xfe not JSON"))
    [whole] = platform.api.get("/v1/deadletters", params={"key": first["key"]}).json()
    assert base64.b64decode(whole["raw_base64"]) == b"\xff\xfe not JSON"


def test_a_failing_function_is_retried_dead_lettered_and_redriven(
    platform: Platform, unique: str, test_images: dict[str, str]
) -> None:
    platform.deploy(unique, test_images["fail"],
                    retry={"max_attempts": 2, "backoff_s": 0.1, "retry_on": ["error"]})
    hook = platform.webhook("failing", unique)
    platform.subscribe(unique, unique)

    event_id = platform.deliver(hook, b"payload")
    (failed,) = platform.results(event_id)

    assert (failed["status"], failed["attempt"], failed["failure"]) == ("failed", 2, "error")
    assert [a["attempt"] for a in failed["attempts"]] == [1]
    [letter] = platform.api.get("/v1/deadletters", params={"function": unique}).json()
    assert letter["key"] == failed["invocation_id"]
    assert (letter["reason"], letter["failure"]) == ("exhausted", "error")
    assert "bad input" in letter["logs_tail"]
    assert [a["attempt"] for a in letter["attempts"]] == [1, 2]
    assert letter["image_digest"].startswith("sha256:")

    platform.deploy(unique, "faasflow/echo:latest")  # fixed
    done = platform.api.post("/v1/deadletters/redrive", json={"function": unique}).json()
    assert done == {"redriven": [failed["invocation_id"]], "remaining": 0, "skipped": 0}

    def succeeded() -> dict[str, Any] | None:
        found = platform.api.get(f"/v1/invocations/{failed['invocation_id']}").json()
        return found if found["status"] == "succeeded" else None

    result = wait_for(succeeded)
    assert result is not None
    assert (output(result), result["redrive"]) == (b"payload", 1)
    [marked] = platform.api.get("/v1/deadletters", params={"function": unique}).json()
    assert marked["redriven_at"]
    again = platform.api.post("/v1/deadletters/redrive", json={"function": unique}).json()
    assert again == {"redriven": [], "remaining": 0, "skipped": 1}


def test_a_slow_function_does_not_hold_up_a_fast_one(
    platform: Platform, unique: str, test_images: dict[str, str]
) -> None:
    slow, fast = f"{unique}-slow", f"{unique}-fast"
    platform.deploy(slow, test_images["sleep"], env={"SLEEP_S": "30"}, timeout_s=4,
                    max_concurrency=1, retry={"max_attempts": 1})
    platform.deploy(fast, "faasflow/echo:latest")
    slow_hook, fast_hook = platform.webhook("slow", slow), platform.webhook("fast", fast)
    platform.subscribe(slow, slow)
    platform.subscribe(fast, fast)
    stuck = [platform.deliver(slow_hook, b"s") for _ in range(8)]

    quick = [platform.deliver(fast_hook, str(i).encode()) for i in range(8)]

    assert all(platform.results(e, wait_s=20)[0]["status"] == "succeeded" for e in quick)
    unfinished = [e for e in stuck
                  if platform.api.get("/v1/invocations", params={"event_id": e}).json()[0][
                      "status"] not in ("timeout", "failed")]
    assert len(unfinished) >= 4  # one at a time, 4 s each: most of them still wait


def test_an_event_over_the_size_budget_is_refused_at_ingest(platform: Platform,
                                                            unique: str) -> None:
    platform.webhook("ingest", unique)  # declares the source
    huge = {"specversion": "1.0", "id": "1", "source": "producer", "type": "t",
            "subject": "x" * (200 * 1024)}

    refused = platform.api.post(f"/v1/sources/{unique}/events", json=huge,
                                headers={"Content-Type": "application/cloudevents+json"})

    assert refused.status_code == 413
    assert refused.json()["error"]["code"] == "payload_too_large"


def test_a_broker_that_stops_answering_makes_the_gateway_not_ready_then_ready_again(
    tmp_path: Path, unique: str
) -> None:
    """Before: a view's follower died silently on a fetch error and a read barrier then
    waited forever; /healthz said ok throughout."""
    broker = KafkaContainer().start()
    edge = Platform(broker.bootstrap, unique, free_port(), tmp_path)
    try:
        edge.start_gateway()
        container = broker.container.get_wrapped_container()
        container.pause()  # connections stay open, nothing answers: a hung broker
        try:
            health = wait_for(lambda: (answer := edge.anonymous.get("/healthz")).status_code
                              == 503 and answer, timeout_s=30)
            assert health, "the gateway still says it is ready"
            assert health.json()["error"]["code"] == "not_ready"
            assert any(unique in problem for problem in health.json()["error"]["problems"])
            started = time.monotonic()
            write = edge.api.put(f"/v1/functions/{unique}", json={"image": "faasflow/echo"})
            assert write.status_code == 503
            assert time.monotonic() - started < 15
        finally:
            container.unpause()
        ready = wait_for(lambda: edge.anonymous.get("/healthz").status_code == 200,
                         timeout_s=60)
        assert ready
        assert edge.webhook("after", unique)["id"]
    finally:
        edge.stop()
        broker.stop()
