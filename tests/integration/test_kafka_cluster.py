"""Three ``faasflow/kafka`` containers make one KRaft cluster that keeps taking acks=all writes,
and serving them, after one of its brokers stops.

The brokers share a user-defined bridge network, on which each is reachable as ``kafka-N``
(their internal listener and the controller quorum). Each also publishes an external listener
on a host port, advertised as 127.0.0.1, which is how this test, on the host, connects.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import docker
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError
from docker.models.containers import Container
from docker.models.networks import Network

from pipeline.cli.processes import kafka_version
from tests.integration.conftest import free_port
from tests.integration.platform import wait_for_kafka

pytestmark = pytest.mark.timeout(180)

BROKERS = 3
BATCH = 100


@dataclass
class Cluster:
    network: Network
    containers: dict[int, Container]  # node id -> its container
    ports: dict[int, int]  # node id -> its external port on the host

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.ports.values())


@pytest.fixture
def cluster(client: docker.DockerClient) -> Iterator[Cluster]:
    run = uuid.uuid4().hex[:8]
    # All members format their storage with the same id (base64url of 16 bytes, like Kafka's).
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    voters = ",".join(f"{node}@kafka-{node}:9093" for node in range(1, BROKERS + 1))
    network = client.networks.create(f"faasflow-kafka-{run}", driver="bridge")
    started = Cluster(network, {}, {})
    try:
        for node in range(1, BROKERS + 1):
            port = free_port()
            container = client.containers.create(
                f"faasflow/kafka:{kafka_version()}",
                name=f"faasflow-kafka-{run}-{node}",  # unique on the engine; kafka-N on the net
                hostname=f"kafka-{node}",
                environment={
                    "KAFKA_NODE_ID": str(node),
                    "KAFKA_VOTERS": voters,
                    "KAFKA_CLUSTER_ID": cluster_id,
                    "KAFKA_ADVERTISE_HOST": f"kafka-{node}",
                    "KAFKA_EXTERNAL_PORT": str(port),
                    "KAFKA_EXTERNAL_ADVERTISE": f"127.0.0.1:{port}",
                    "KAFKA_HEAP_MB": "256",
                },
                ports={f"{port}/tcp": ("127.0.0.1", port)},
            )
            started.containers[node] = container
            started.ports[node] = port
            client.networks.get("bridge").disconnect(container)
            network.connect(container, aliases=[f"kafka-{node}"])
        for container in started.containers.values():
            container.start()
        for port in started.ports.values():  # each listener, not just the first to answer
            wait_for_kafka(f"127.0.0.1:{port}", timeout_s=90)
        yield started
    finally:
        for container in started.containers.values():
            container.remove(force=True)
        network.remove()


async def brokers_up(bootstrap: str, count: int, timeout_s: float) -> None:
    """Wait until ``count`` brokers have registered with the cluster.

    A broker can be in the metadata before its external listener takes connections: a
    request the client sends it then fails (``NodeNotReadyError``), and is asked again."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                try:
                    if len((await admin.describe_cluster())["brokers"]) >= count:
                        return
                except KafkaError:
                    pass
                await asyncio.sleep(0.5)
    finally:
        await admin.close()


async def placed(admin: AIOKafkaAdminClient, topic: str, count: int) -> list[dict[str, Any]]:
    """The topic's partitions once the metadata shows all ``count`` of them led."""
    async with asyncio.timeout(20):
        while True:
            [described] = await admin.describe_topics([topic])
            partitions: list[dict[str, Any]] = described["partitions"]
            if len(partitions) == count and all(p["leader"] >= 0 for p in partitions):
                return partitions
            await asyncio.sleep(0.2)


async def topic_config(admin: AIOKafkaAdminClient, topic: str, name: str) -> list[Any]:
    """The topic's config entry ``name``, once the broker asked knows the topic: one that
    does not yet answers with an error code and no entries."""
    wanted = ConfigResource(ConfigResourceType.TOPIC, topic, configs={name: None})
    async with asyncio.timeout(20):
        while True:
            [response] = await admin.describe_configs([wanted])
            [(error_code, _, _, _, entries)] = response.resources
            if error_code == 0:
                return list(entries)
            await asyncio.sleep(0.2)


async def produce(bootstrap: str, topic: str, values: range) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                enable_idempotence=True, request_timeout_ms=15000)
    await producer.start()
    try:
        sent = [await producer.send(topic, str(value).encode()) for value in values]
        await asyncio.gather(*sent)  # each future fails unless min.insync replicas took it
    finally:
        await producer.stop()


async def consume(bootstrap: str, topic: str, count: int, group: str | None) -> list[int]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    seen: list[int] = []
    try:
        async with asyncio.timeout(45):
            while len(seen) < count:
                batches = await consumer.getmany(timeout_ms=1000)
                seen += [int(record.value) for records in batches.values() for record in records
                         if record.value is not None]
        if group is not None:
            await consumer.commit()
    finally:
        await consumer.stop()
    return seen


async def test_the_cluster_writes_and_reads_with_one_broker_down(
    cluster: Cluster, client: docker.DockerClient
) -> None:
    await brokers_up(cluster.bootstrap, BROKERS, timeout_s=60)
    topic, group = f"cluster-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=3)])
        partitions = await placed(admin, topic, 3)
        entries = await topic_config(admin, topic, "min.insync.replicas")
    finally:
        await admin.close()
    assert all(len(partition["replicas"]) == BROKERS for partition in partitions)
    # The cluster's default, from the runner's replication settings for three voters.
    assert [(name, value) for name, value, *_ in entries] == [("min.insync.replicas", "2")]

    await produce(cluster.bootstrap, topic, range(BATCH))
    # A group before the failure, so its offsets (and the offsets topic, 3 copies) exist.
    assert sorted(await consume(cluster.bootstrap, topic, BATCH, group)) == list(range(BATCH))

    # Stop the broker leading partition 0: its partitions must elect new leaders.
    leader = next(p["leader"] for p in partitions if p["partition"] == 0)
    await asyncio.to_thread(cluster.containers[leader].stop, timeout=10)
    live = ",".join(f"127.0.0.1:{port}" for node, port in cluster.ports.items() if node != leader)

    await produce(live, topic, range(BATCH, 2 * BATCH))  # acks=all: 2 of 3 in sync suffice

    # The group resumes where it committed; a reader from the start sees everything once.
    resumed = await consume(live, topic, BATCH, group)
    assert sorted(resumed) == list(range(BATCH, 2 * BATCH))
    everything = await consume(live, topic, 2 * BATCH, None)
    assert sorted(everything) == list(range(2 * BATCH))
