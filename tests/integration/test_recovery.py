"""State lives in Kafka: it survives restarts, and a killed worker finishes its work."""

from __future__ import annotations

import asyncio
import time

import docker
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests.integration.conftest import KafkaContainer
from tests.integration.platform import Platform


def test_registry_survives_a_gateway_restart(platform: Platform, unique: str) -> None:
    platform.deploy(f"{unique}-echo", "faasflow/echo:latest", env={"GREETING": "hi"})
    platform.deploy(f"{unique}-gone", "faasflow/echo:latest")
    hook = platform.webhook("keep", unique)
    platform.subscribe(f"{unique}-echo", unique)
    assert platform.api.delete(f"/v1/functions/{unique}-gone").status_code == 204
    before = {path: platform.api.get(path).json()
              for path in ("/v1/functions", "/v1/webhooks", "/v1/subscriptions")}

    platform.stop_gateway()
    platform.start_gateway()

    after = {path: platform.api.get(path).json() for path in before}
    assert after == before
    assert [f["name"] for f in after["/v1/functions"]] == [f"{unique}-echo"]
    assert after["/v1/functions"][0]["env"] == {"GREETING": "hi"}
    event_id = platform.deliver(hook, b"after restart")
    (result,) = platform.results(event_id)
    assert result["output"] == "after restart"


def test_results_topic_is_compacted(kafka: KafkaContainer, platform: Platform) -> None:
    async def configs() -> dict[str, dict[str, str]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
        await admin.start()
        try:
            names = ("results", "registry", "checkpoints", "invocations")
            described = await admin.describe_configs([
                ConfigResource(ConfigResourceType.TOPIC, f"{platform.prefix}.{n}") for n in names
            ])
        finally:
            await admin.close()
        found = {}
        for response in described:
            for resource in response.resources:
                _, _, _, name, entries = resource
                found[name.rsplit(".", 1)[1]] = {e[0]: e[1] for e in entries}
        return found

    topics = asyncio.run(configs())
    assert topics["results"]["cleanup.policy"] == "compact"
    assert topics["registry"]["cleanup.policy"] == "compact"
    assert topics["checkpoints"]["cleanup.policy"] == "compact"
    assert topics["invocations"]["cleanup.policy"] == "delete"


def test_a_worker_killed_mid_invocation_completes_it_after_restart(
    platform: Platform, unique: str, test_images: dict[str, str]
) -> None:
    platform.deploy(unique, test_images["sleep"], env={"SLEEP_S": "3"}, timeout_s=30)
    platform.subscribe(unique, unique)
    hook = platform.webhook("crash", unique)
    event_id = platform.deliver(hook, b"survivor")

    def running() -> bool:
        results = platform.results(event_id, wait_s=0)
        assert not results or results[0]["status"] in ("pending", "running"), results
        return bool(results) and results[0]["status"] == "running"

    deadline = time.monotonic() + 30
    while not running():
        assert time.monotonic() < deadline, "the invocation never started"
        time.sleep(0.05)
    platform.kill_worker()
    platform.start_worker()

    (result,) = platform.results(event_id, wait_s=60)
    assert result["status"] == "succeeded", (result["error"], result["logs"], result["exit_code"])
    assert result["output"].strip() == "slept survivor"
    client = docker.from_env()
    assert not client.containers.list(all=True, filters={"label": f"faasflow.function={unique}"})
    client.close()


def test_processed_events_and_invocations_are_committed(kafka: KafkaContainer,
                                                        platform: Platform, unique: str) -> None:
    """The starter acknowledges an event only after its writes; the offsets still move."""
    platform.deploy(unique, "faasflow/echo:latest")
    platform.subscribe(unique, unique)
    hook = platform.webhook("commits", unique)
    for n in range(3):
        (result,) = platform.results(platform.deliver(hook, f"{n}".encode()))
        assert result["status"] == "succeeded"

    async def committed() -> dict[str, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
        await admin.start()
        totals: dict[str, int] = {}
        try:
            for group in ("starter", "executor"):  # the event topics', the invocations'
                offsets = await admin.list_consumer_group_offsets(f"{platform.prefix}-{group}")
                for tp, meta in offsets.items():
                    totals[tp.topic] = totals.get(tp.topic, 0) + max(meta.offset, 0)
        finally:
            await admin.close()
        return totals

    # An invocation is acknowledged once its final Result is written, so its offset is
    # committed (on the next commit) a moment after the Result can be read: wait for both.
    wanted = {f"{platform.prefix}.events.{unique}": 3, f"{platform.prefix}.invocations": 3}
    deadline = time.monotonic() + 20
    while True:
        totals = asyncio.run(committed())
        if all(totals.get(topic, 0) >= at_least for topic, at_least in wanted.items()):
            break
        assert time.monotonic() < deadline, totals
        time.sleep(0.5)
