"""A gateway of several processes sharing its port, on the real broker: one killed while
the others serve, the broker down, bodies over the limit, duplicate deliveries spread
over the processes, and the results index's single writer.

Which process answers is the kernel's choice (``SO_REUSEPORT`` hashes each new
connection): the tests open a new connection per request until they have seen them all.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from pipeline.errors import BrokerUnavailable
from pipeline.kafka.reading import topic_partitions
from pipeline.settings import KafkaSettings
from tests.integration.conftest import KafkaContainer, free_port
from tests.integration.platform import TOKEN, Platform, wait_for

PROCESSES = 2
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ECHO = "def main(event, context):\n    return event\n"

pytestmark = pytest.mark.timeout(600)


def several(kafka: str, prefix: str, tmp_path: Path) -> Platform:
    edge = Platform(kafka, prefix, free_port(), tmp_path,
                    FAASFLOW_GATEWAY_PROCESSES=str(PROCESSES))
    edge.start_timeout_s = 180  # processes starting side by side on a busy machine
    return edge


def start_all(edge: Platform) -> None:
    """Start the gateway and wait for every process (the first to answer may be alone)."""
    edge.start_gateway()
    assert wait_for(lambda: len(by_process(edge, "/healthz")) == PROCESSES, timeout_s=180)


def fresh(edge: Platform, method: str, path: str, **options: Any) -> httpx.Response:
    """One request on a connection of its own (so that any process may take it). Clients
    here are ``verify=False``: plain HTTP, and no CA bundle loaded for each one."""
    with httpx.Client(base_url=edge.url, timeout=30, verify=False) as client:
        return client.request(method, path, **options)


def by_process(edge: Platform, path: str, headers: dict[str, str] | None = None,
               want: int = PROCESSES) -> dict[int, httpx.Response]:
    """The answers to ``path`` by process (its pid from /healthz asked first on the same
    connection, which keep-alive keeps on one process): of ``want`` processes, or of
    those that answered 200 new connections."""
    seen: dict[int, httpx.Response] = {}
    for _ in range(200):
        with httpx.Client(base_url=edge.url, timeout=30, verify=False) as client:
            pid = client.get("/healthz").json()["process"]
            answer = client.get(path, headers=headers)
        assert answer.status_code == 200, answer.text
        seen[pid] = answer
        if len(seen) >= want:
            break
    return seen


def writers(edge: Platform) -> dict[int, bool]:
    """Whether each process writes the index."""
    return {pid: stats.json()["writer"]
            for pid, stats in by_process(edge, "/v1/index", AUTH).items()}


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@pytest.fixture
def edge(kafka: KafkaContainer, tmp_path: Path, unique: str) -> Iterator[Platform]:
    running = several(kafka.bootstrap, unique, tmp_path)
    try:
        running.start_worker()
        start_all(running)
        yield running
    finally:
        running.stop()


def test_the_processes_share_the_port_and_one_writes_the_index(edge: Platform) -> None:
    roles = writers(edge)

    assert len(roles) == PROCESSES
    assert edge.gateway is not None
    assert edge.gateway.pid not in roles  # the parent serves nothing
    assert sorted(roles.values()) == [False, True]


def test_a_killed_process_leaves_the_port_answering_and_another_writes_the_index(
    edge: Platform, unique: str
) -> None:
    edge.deploy(unique, None, runtime="python", code=ECHO)
    first = edge.api.post(f"/function/{unique}", json={"n": 1})
    assert first.status_code == 200, first.text
    (writer,) = [pid for pid, writes in writers(edge).items() if writes]

    os.kill(writer, signal.SIGKILL)
    assert wait_for(lambda: not alive(writer), timeout_s=10)
    for n in range(30):  # every new connection is answered, by the processes left
        assert fresh(edge, "GET", "/healthz").status_code == 200, n

    def one_writer_again() -> dict[int, bool] | None:  # and the killed one replaced
        roles = writers(edge)
        return roles if writer not in roles and sorted(roles.values()) == [False, True] \
            else None

    roles = wait_for(one_writer_again, timeout_s=60, every_s=0.5)
    assert roles, "no single writer after the writer was killed"
    second = edge.api.post(f"/function/{unique}", json={"n": 2})
    assert second.status_code == 200, second.text
    for call in (first, second):  # both indexed, and readable from every process
        ident = call.headers["X-Call-Id"]
        listed = wait_for(lambda i=ident: all(  # type: ignore[misc]
            any(r["invocation_id"] == i for r in answer.json()["invocations"])
            for answer in by_process(edge, f"/v1/invocations?function={unique}",
                                     AUTH).values()), timeout_s=30)
        assert listed, f"invocation {ident} is not in every process's index"


def test_bodies_over_the_limit_are_refused_by_every_process(edge: Platform,
                                                            unique: str) -> None:
    hook = edge.webhook("big", unique)
    huge = b"x" * (64 * 1024 + 1)
    for _ in range(40):  # on 40 new connections: all on one process once in 2**39 runs
        refused = fresh(edge, "POST", hook["url"], content=huge)
        assert refused.status_code == 413
        assert refused.json()["error"]["code"] == "payload_too_large"

    counted = _refusals_by_process(edge)
    assert len(counted) == PROCESSES
    assert all(n >= 1 for n in counted.values()), counted


def _refusals_by_process(edge: Platform) -> dict[int, float]:
    """Each process's count of 413 answers, from its own /metrics."""
    return {pid: sum(float(line.rsplit(" ", 1)[1]) for line in metrics.text.splitlines()
                     if line.startswith("faasflow_http_requests_total{")
                     and 'status="413"' in line)
            for pid, metrics in by_process(edge, "/metrics", AUTH).items()}


def test_a_delivery_sent_again_to_each_process_is_one_event_and_one_invocation(
    edge: Platform, unique: str
) -> None:
    edge.deploy(unique, None, runtime="python", code=ECHO)
    response = edge.api.post("/v1/webhooks", json={"name": "dup", "source": unique,
                                                   "delivery_header": "X-Delivery"})
    assert response.status_code == 201, response.text
    hook = response.json()
    edge.subscribe(unique, unique)
    answers: dict[int, set[str]] = {}
    for _ in range(200):
        with httpx.Client(base_url=edge.url, timeout=30, verify=False) as client:
            pid = client.get("/healthz").json()["process"]
            delivered = client.post(hook["url"], content=b"once",
                                    headers={"X-Delivery": "d-1"})
        assert delivered.status_code == 202, delivered.text
        answers.setdefault(pid, set()).add(delivered.json()["event_id"])
        if len(answers) == PROCESSES and sum(map(len, answers.values())) >= 4:
            break

    assert len(answers) == PROCESSES
    (event_id,) = set().union(*answers.values())
    results = edge.results(event_id)
    assert [r["function"] for r in results] == [unique]
    assert results[0]["status"] == "succeeded"


def test_the_broker_down_is_503_everywhere_and_every_202_was_written(
    tmp_path: Path, unique: str
) -> None:
    broker = KafkaContainer().start()
    edge = several(broker.bootstrap, unique, tmp_path)
    try:
        start_all(edge)
        hook = edge.webhook("down", unique)
        # a broker just started may take longer than the publish timeout for its first
        # writes (the topic's leader being elected): wait until it takes one
        first = wait_for(lambda: _try_deliver(edge, hook), timeout_s=60, every_s=0.5)
        assert first, "the new broker never took a delivery"
        accepted = [first, *(_deliver(edge, hook, 202) for _ in range(5))]
        container = broker.container.get_wrapped_container()
        container.pause()
        try:
            for _ in range(2 * PROCESSES):
                started = time.monotonic()
                _deliver(edge, hook, 503)
                assert time.monotonic() - started < 15
        finally:
            container.unpause()
        after = wait_for(lambda: _try_deliver(edge, hook), timeout_s=60, every_s=0.5)
        assert after, "ingest did not recover"
        accepted.append(after)

        stored = asyncio.run(_event_ids(broker.bootstrap, f"{unique}.events.{unique}"))
        assert set(accepted) <= stored
    finally:
        edge.stop()
        broker.stop()


def _deliver(edge: Platform, hook: dict[str, Any], status: int) -> str:
    answer = fresh(edge, "POST", hook["url"], content=b"payload")
    assert answer.status_code == status, answer.text
    if status != 202:
        assert answer.json()["error"]["code"] == "broker_unavailable"
        return ""
    return str(answer.json()["event_id"])


def _try_deliver(edge: Platform, hook: dict[str, Any]) -> str | None:
    answer = fresh(edge, "POST", hook["url"], content=b"payload")
    return str(answer.json()["event_id"]) if answer.status_code == 202 else None


async def _event_ids(bootstrap: str, topic: str) -> set[str]:
    """The keys (event ids) of every record in ``topic``, up to its end."""
    for tries in range(10):  # the broker was just unpaused: its metadata may lag a moment
        try:
            partitions = await topic_partitions(KafkaSettings(bootstrap=bootstrap), topic)
            break
        except BrokerUnavailable:
            if tries == 9:
                raise
            await asyncio.sleep(1)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        keys: set[str] = set()
        while True:
            positions = {tp: await consumer.position(tp) for tp in ends}
            if all(positions[tp] >= end for tp, end in ends.items()):
                return keys
            batches = await consumer.getmany(timeout_ms=1000)
            keys |= {m.key.decode() for ms in batches.values() for m in ms if m.key}
    finally:
        await consumer.stop()

