"""Connectors managed through the registry, run by workers: HTTP polling and CloudEvents
ingest, end to end through Kafka."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from connectors.http_poll import DIGEST
from tests.documents import Document
from tests.integration.conftest import KafkaContainer
from tests.integration.platform import Platform


@pytest.fixture
def document() -> Iterator[Document]:
    served = Document()
    yield served
    served.close()


def source_events(kafka: KafkaContainer, topic: str) -> list[dict[str, Any]]:
    """Everything on an event topic, read straight from Kafka."""

    async def read() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka.bootstrap,
                                    auto_offset_reset="earliest", group_id=None)
        await consumer.start()
        try:
            batches = await consumer.getmany(timeout_ms=1500)
            return [json.loads(m.value) for ms in batches.values() for m in ms]
        finally:
            await consumer.stop()

    return asyncio.run(read())


def wait_for(check: Any, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
    return value


def test_poller_emits_only_on_change_and_survives_a_restart(
    kafka: KafkaContainer, platform: Platform, unique: str, document: Document
) -> None:
    platform.deploy(f"{unique}-echo", "faasflow/echo:latest")
    platform.subscribe(f"{unique}-echo", unique)
    created = platform.api.post("/v1/connectors", json={
        "name": unique, "kind": "http-poll", "source": unique,
        "config": {"url": document.url, "interval_s": 0.2},
    })
    assert created.status_code == 201, created.text
    topic = f"{platform.prefix}.events.{unique}"

    first = wait_for(lambda: source_events(kafka, topic))
    wait_for(lambda: document.not_modified >= 3)  # polled again, unchanged: no event
    assert [e["data"] for e in source_events(kafka, topic)] == ["version 1"]
    assert first[0]["type"] == "dev.faasflow.http.changed"
    assert first[0]["faasflowconnector"] == unique

    document.body = b"version 2"
    wait_for(lambda: len(source_events(kafka, topic)) == 2)

    platform.kill_worker()
    document.body = b"version 3"  # changed while no worker ran
    platform.start_worker()
    wait_for(lambda: len(source_events(kafka, topic)) == 3)
    seen = document.requests
    wait_for(lambda: document.requests > seen + 3)
    events = source_events(kafka, topic)
    assert [e["data"] for e in events] == ["version 1", "version 2", "version 3"]
    (result,) = platform.results(events[-1]["id"])
    assert result["output"] == "version 3"

    def checkpoint() -> Any:  # the gateway's view of the checkpoints topic catches up
        shown = platform.api.get(f"/v1/connectors/{unique}").json()["checkpoint"]
        return shown if shown and shown["state"]["digest"] == events[-1][DIGEST] else None

    shown = wait_for(checkpoint)
    assert shown["at"] >= events[-1]["time"]  # committed after its event was made


def test_poller_backs_off_on_errors_and_recovers(
    kafka: KafkaContainer, platform: Platform, unique: str, document: Document
) -> None:
    document.status = 503
    platform.api.post("/v1/connectors", json={
        "name": unique, "kind": "http-poll", "source": unique,
        "config": {"url": document.url, "interval_s": 0.1},
    })
    wait_for(lambda: document.requests >= 2)
    document.status = None
    topic = f"{platform.prefix}.events.{unique}"
    assert [e["data"] for e in wait_for(lambda: source_events(kafka, topic))] == ["version 1"]


def test_removing_a_connector_stops_it(platform: Platform, unique: str,
                                       document: Document) -> None:
    platform.api.post("/v1/connectors", json={
        "name": unique, "kind": "http-poll", "source": unique,
        "config": {"url": document.url, "interval_s": 0.1},
    })
    wait_for(lambda: document.requests >= 2)

    assert platform.api.delete(f"/v1/connectors/{unique}").status_code == 204
    time.sleep(0.5)
    stopped_at = document.requests
    time.sleep(1.0)
    assert document.requests == stopped_at
    assert platform.api.get(f"/v1/connectors/{unique}").status_code == 404


def test_connector_definitions_are_validated(gateway: Platform, unique: str) -> None:
    def add(**fields: Any) -> Any:
        body = {"name": unique, "kind": "http-poll", "source": unique,
                "config": {"url": "http://127.0.0.1:9/x"}, **fields}
        return gateway.api.post("/v1/connectors", json=body)

    assert add(kind="carrier-pigeon").status_code == 422
    bad = add(config={"url": "not a url"})
    assert bad.status_code == 422
    assert "url" in bad.json()["error"]["message"]
    assert add(config={"url": "http://127.0.0.1:9/x", "surprise": 1}).status_code == 422
    assert add().status_code == 201
    assert add().status_code == 200  # the same definition again
    conflict = add(config={"url": "http://127.0.0.1:9/other"})
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "conflict"
    listed = gateway.api.get("/v1/connectors").json()
    assert [c["name"] for c in listed if c["name"] == unique] == [unique]


def test_ingest_structured_and_binary_cloudevents(platform: Platform, unique: str) -> None:
    platform.deploy(f"{unique}-echo", "faasflow/echo:latest")
    platform.subscribe(f"{unique}-echo", unique)
    structured = {"specversion": "1.0", "id": f"{unique}-1", "source": "https://example.org/app",
                  "type": "org.example.created", "datacontenttype": "application/json",
                  "data": {"n": 1}}
    response = platform.api.post(f"/v1/sources/{unique}/events", content=json.dumps(structured),
                                 headers={"Content-Type": "application/cloudevents+json"})
    assert response.status_code == 202, response.text
    assert response.json() == {"event_id": f"{unique}-1"}
    (result,) = platform.results(f"{unique}-1")
    assert json.loads(result["output"]) == {"n": 1}

    binary = platform.api.post(f"/v1/sources/{unique}/events", content=b"plain body", headers={
        "ce-specversion": "1.0", "ce-id": f"{unique}-2", "ce-source": "/sensor/7",
        "ce-type": "org.example.reading", "Content-Type": "text/plain",
    })
    assert binary.status_code == 202, binary.text
    (result,) = platform.results(f"{unique}-2")
    assert result["output"] == "plain body"


def test_ingest_rejects_what_is_not_a_cloudevent(gateway: Platform, unique: str) -> None:
    gateway.webhook("declares-the-source", unique)
    path = f"/v1/sources/{unique}/events"
    missing = gateway.api.post(path, json={"specversion": "1.0", "id": "1"},
                               headers={"Content-Type": "application/cloudevents+json"})
    assert missing.status_code == 422
    assert "source, type" in missing.json()["error"]["message"]
    assert gateway.api.post(path, content=b"hello").status_code == 422
    assert gateway.anonymous.post(path, content=b"{}").status_code == 401
    unknown = gateway.api.post("/v1/sources/nobody-declared-this/events", content=b"x",
                               headers={"ce-specversion": "1.0", "ce-id": "1",
                                        "ce-source": "s", "ce-type": "t"})
    assert unknown.status_code == 404


def connector_state(platform: Platform, name: str, state: str) -> Any:
    """The connector as the API shows it, once it is in ``state``."""

    def check() -> Any:
        shown = platform.api.get(f"/v1/connectors/{name}").json()
        return shown if shown["state"] == state else None

    return wait_for(check)


def test_a_connector_whose_url_refuses_it_fails_until_it_is_defined_again(
    kafka: KafkaContainer, platform: Platform, unique: str, document: Document
) -> None:
    document.status = 401
    definition = {"name": unique, "kind": "http-poll", "source": unique,
                  "config": {"url": document.url, "interval_s": 0.1}}
    assert platform.api.post("/v1/connectors", json=definition).status_code == 201

    failed = connector_state(platform, unique, "failed")
    assert failed["error"].startswith("UrlRefused: ")
    assert "401" in failed["error"]
    assert failed["error_at"] is not None
    (listed,) = [c for c in platform.api.get("/v1/connectors").json() if c["name"] == unique]
    assert listed["state"] == "failed"
    assert f"connector {unique} failed: UrlRefused" in platform.log("worker")
    requests = document.requests
    time.sleep(1.5)
    assert document.requests == requests  # not restarted

    document.status = None
    assert platform.api.delete(f"/v1/connectors/{unique}").status_code == 204
    assert platform.api.post("/v1/connectors", json=definition).status_code == 201
    running = connector_state(platform, unique, "running")
    assert running["error"] is None  # a new definition: the old one's error is not shown
    topic = f"{platform.prefix}.events.{unique}"
    assert [e["data"] for e in wait_for(lambda: source_events(kafka, topic))] == ["version 1"]


def test_a_failing_url_shows_as_retrying_with_its_last_error(
    platform: Platform, unique: str, document: Document
) -> None:
    document.status = 503
    platform.api.post("/v1/connectors", json={
        "name": unique, "kind": "http-poll", "source": unique,
        "config": {"url": document.url, "interval_s": 0.1},
    })
    retrying = connector_state(platform, unique, "retrying")
    assert retrying["error"].startswith("HTTPStatusError: Server error '503")
    document.status = None
    running = connector_state(platform, unique, "running")
    assert running["error"] == retrying["error"]
    assert running["error_at"] >= retrying["error_at"]
