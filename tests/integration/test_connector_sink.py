"""A worker's connector machinery in this process, against the real broker: resuming reads
only the connector's own partition, an event over the size budget is dead-lettered while
the connector moves on, and connector states travel through their topic to a view like
the gateway's."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AsyncExitStack
from typing import Any

import pytest

from connectors.http_poll import HttpPoller, PollConfig
from pipeline.connector_states import Checkpoints, ConnectorStates, State
from pipeline.kafka import CompactedView, Publisher, ensure_topics, partition_of, read_from
from pipeline.records import Event, dumps, utc_now
from pipeline.registry import Registry, encode
from pipeline.settings import KafkaSettings, Settings
from pipeline.specs import ConnectorSpec
from pipeline.topics import Topics
from pipeline.worker import connector_sink
from pipeline.worker.connector_sink import KafkaSink, SinkParts
from pipeline.worker.connectors import WorkerConnectors
from tests.documents import Document
from tests.integration.conftest import KafkaContainer

PARTITIONS = 4


class Deployment:
    """Topics, a publisher and views of one test's own prefix."""

    def __init__(self, kafka: KafkaContainer, prefix: str, **settings: Any) -> None:
        self.settings = Settings(kafka=KafkaSettings(bootstrap=kafka.bootstrap,
                                                     topic_prefix=prefix,
                                                     partitions=PARTITIONS), **settings)
        self.kafka = self.settings.kafka
        self.topics = Topics(self.kafka)
        self.publisher = Publisher(self.kafka)
        self.stack = AsyncExitStack()

    async def start(self, *sources: str) -> None:
        await ensure_topics(self.kafka, [*self.topics.core(),
                                         *(self.topics.event_topic(s) for s in sources)])
        await self.publisher.start()
        self.stack.push_async_callback(self.publisher.stop)

    async def view(self, topic: str, apply: Callable[[bytes, bytes | None], None]
                   ) -> CompactedView:
        view = CompactedView(self.kafka, topic, apply)
        await view.start()
        self.stack.push_async_callback(view.stop)
        return view

    async def parts(self) -> SinkParts:
        checkpoints = Checkpoints()
        self.checkpoints_view = await self.view(self.topics.checkpoints, checkpoints.apply)
        return SinkParts(self.topics, self.kafka, self.settings.budget, self.publisher,
                         checkpoints, lambda: 0)

    async def records(self, topic: str) -> list[tuple[bytes | None, dict[str, Any]]]:
        return [(key, json.loads(value)) for _, _, key, value
                in await read_from(self.kafka, topic, {}) if value is not None]


@pytest.fixture
async def deployment(kafka: KafkaContainer, unique: str) -> AsyncIterator[Deployment]:
    deployed = Deployment(kafka, unique, max_payload_bytes=1024)
    async with deployed.stack:
        yield deployed


@pytest.fixture
def document() -> Iterator[Document]:
    served = Document()
    yield served
    served.close()


def spec(name: str, url: str, **config: Any) -> ConnectorSpec:
    return ConnectorSpec(name=name, kind="http-poll", source=name, created_at=utc_now(),
                         config={"url": url, "interval_s": 0.1, **config})


def event(ident: str) -> Event:
    return Event(id=ident, source="test", type="test.happened", data=ident.encode())


async def test_resume_reads_only_its_own_partition_from_its_checkpoint(
    deployment: Deployment, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"{unique}-poll"
    await deployment.start(name)
    topic = deployment.topics.events(name)
    mine = partition_of(name, PARTITIONS)
    elsewhere = [k for k in (f"other-{i}" for i in range(2000))
                 if partition_of(k, PARTITIONS) != mine][:600]
    await deployment.publisher.publish_many(topic, [(k, b"{}") for k in elsewhere])
    neighbour = next(k for k in (f"near-{i}" for i in range(100))
                     if partition_of(k, PARTITIONS) == mine)  # same partition, other key
    first = KafkaSink(spec(name, "http://127.0.0.1:9/"), await deployment.parts(),
                      lambda _: None)
    assert (await first.resume()).checkpoint is None
    await first.commit([event("e1"), event("e2")], {"n": 1})
    lost = Event.from_dict(json.loads(dumps(event("e3").to_dict())))
    await deployment.publisher.publish(topic, name, dumps(lost.to_dict()))  # no checkpoint
    await deployment.publisher.publish_many(topic, [(neighbour, b"{}")] * 5)
    await deployment.publisher.publish_many(topic, [(k, b"{}") for k in elsewhere])

    scans: list[tuple[Mapping[int, int], list[int] | None]] = []
    read: list[int] = []

    async def counting_scan(kafka: KafkaSettings, topic: str, start: Mapping[int, int],
                            partitions: list[int] | None = None) -> AsyncIterator[Any]:
        scans.append((dict(start), partitions))
        async for record in deployment_scan(kafka, topic, start, partitions):
            read.append(record[0])
            yield record

    deployment_scan = connector_sink.scan
    monkeypatch.setattr(connector_sink, "scan", counting_scan)
    second = KafkaSink(spec(name, "http://127.0.0.1:9/"), await deployment.parts(),
                       lambda _: None)
    resumed = await second.resume()

    assert resumed.checkpoint == {"n": 1}
    assert [e.id for e in resumed.published_since] == ["e3"]
    ((start, partitions),) = scans
    assert partitions == [mine]
    assert list(start) == [mine]  # from the checkpoint's offset, past e1 and e2
    assert read == [mine] * 6  # e3 and the neighbour's five: none of the 1,200 elsewhere


async def test_an_event_over_the_size_budget_is_dead_lettered_and_the_poller_moves_on(
    deployment: Deployment, unique: str, document: Document
) -> None:
    name = f"{unique}-poll"
    await deployment.start(name)
    parts = await deployment.parts()
    sink = KafkaSink(spec(name, document.url), parts, lambda _: None)
    poller = HttpPoller(name, name, PollConfig.model_validate(
        {"url": document.url, "interval_s": 0.1}))
    large = b"x" * 200_000  # the budget: data up to 1,024 bytes, a record up to ~66 kB

    async def reached(sequence: int) -> None:
        def checkpointed() -> bool:
            checkpoint = parts.checkpoints.latest.get(name, {})
            return int(checkpoint.get("state", {}).get("sequence", 0)) >= sequence

        assert await deployment.checkpoints_view.wait_until(checkpointed, 30)

    task = asyncio.create_task(poller.run(sink))
    try:
        await reached(1)
        document.body = large
        await reached(2)
        document.body = b"version 3"
        await reached(3)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    events = [record for _, record in await deployment.records(deployment.topics.events(name))]
    assert [e["data"] for e in events] == ["version 1", "version 3"]
    ((key, dead),) = await deployment.records(deployment.topics.deadletter)
    assert dead["reason"] == "too_large"
    assert dead["event"]["faasflowsequence"] == "2"
    assert dead["event"]["faasflowconnector"] == name
    assert key == f"{name}/{name}/{dead['event']['id']}".encode() == dead["key"].encode()
    assert dead["raw_size"] == len(large)
    assert "over the" in dead["error"]
    state = parts.checkpoints.latest[name]["state"]
    assert state["digest"] == hashlib.sha256(b"version 3").hexdigest()


async def test_connector_states_reach_a_view_like_the_gateways(
    deployment: Deployment, unique: str, document: Document
) -> None:
    name = f"{unique}-poll"
    await deployment.start(name)
    registry = Registry()
    registry_view = await deployment.view(deployment.topics.registry, registry.apply)
    shown = ConnectorStates()
    shown_view = await deployment.view(deployment.topics.connectors, shown.apply)
    connectors = await WorkerConnectors.start(deployment.settings, deployment.topics,
                                              registry, registry_view, deployment.publisher)
    deployment.stack.push_async_callback(connectors.stop)
    connectors.assign(set(range(PARTITIONS)))

    async def define(definition: ConnectorSpec | None) -> None:
        value = None if definition is None else encode(definition)
        await deployment.publisher.publish(deployment.topics.registry, f"connector/{name}",
                                           value)
        await registry_view.sync()
        connectors.reconcile()

    async def state_of(definition: ConnectorSpec, state: State) -> dict[str, Any]:
        def reported() -> bool:
            return bool(shown.describe(definition)["state"] == state.value)

        assert await shown_view.wait_until(reported, 30), shown.describe(definition)
        return shown.describe(definition)

    document.status = 503
    transient = spec(name, document.url)
    await define(transient)
    retrying = await state_of(transient, State.RETRYING)
    assert retrying["error"].startswith("HTTPStatusError: Server error '503")
    document.status = None
    running = await state_of(transient, State.RUNNING)
    assert running["error"] == retrying["error"]  # the last error stays visible
    assert running["error_at"] is not None

    document.status = 401
    await define(None)
    refused = spec(name, document.url)
    await define(refused)
    failed = await state_of(refused, State.FAILED)
    assert failed["error"].startswith("UrlRefused: ")
    assert failed["worker"]
    requests = document.requests
    connectors.reconcile()
    await asyncio.sleep(1.0)
    assert document.requests == requests  # failed: not restarted

    await define(None)  # a removed connector's state goes with it
    assert await shown_view.wait_until(lambda: name not in shown.latest, 30)
