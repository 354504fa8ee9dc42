"""The results index on the real broker, in real gateway processes: it resumes from its
offsets after a restart, rebuilds a file that is damaged or from elsewhere, skips bad
records, keeps the latest states through compaction, and answers 503 (not a hang) for what
needs a broker that stopped answering."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from pipeline.index.rows import timestamp
from pipeline.kafka import read_from
from pipeline.records import Position, Result, Status, dumps
from pipeline.settings import KafkaSettings
from tests.integration.conftest import KafkaContainer, free_port
from tests.integration.platform import REPO, TOKEN, Platform, wait_for

Records = list[tuple[bytes | None, bytes | None]]


def produce(bootstrap: str, topic: str, records: Records) -> None:
    """Write records straight to a topic, in order, as any producer could."""
    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                    enable_idempotence=True)
        await producer.start()
        try:
            sent = [await producer.send(topic, value, key=key) for key, value in records]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()

    asyncio.run(send())


def result(ident: str, function: str, n: int = 0, *, status: Status = Status.SUCCEEDED,
           output: bytes | None = None, event_id: str | None = None) -> Result:
    return Result(invocation_id=ident, event_id=event_id or f"ev-{ident}", function=function,
                  status=status, output=f"output {ident} v{n}".encode() if output is None
                  else output, logs=f"log of {ident}", source="bench",
                  queued_at=f"2026-01-01T00:00:{n % 60:02d}.{int(ident[-6:], 16) % 999999:06d}Z",
                  event_position=Position(0, n))


def encoded(*results: Result) -> Records:
    return [(r.invocation_id.encode(), dumps(r.to_dict())) for r in results]



class Edge(Platform):
    """A gateway alone, whose results topic the test writes to directly."""

    def __init__(self, bootstrap: str, tmp_path: Path) -> None:
        super().__init__(bootstrap, f"x{uuid.uuid4().hex[:10]}", free_port(), tmp_path)
        self.bootstrap = bootstrap
        self.results_topic = f"{self.prefix}.results"
        self.index_file = tmp_path / "index" / f"{self.prefix}.sqlite3"

    def write(self, records: Records) -> None:
        produce(self.bootstrap, self.results_topic, records)

    def stats(self) -> dict[str, Any]:
        answer = self.api.get("/v1/index")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def indexed(self, count: int) -> dict[str, Any]:
        stats = wait_for(lambda: (s := self.stats())["invocations"] == count and s)
        assert stats, self.stats()
        return dict(stats)

    def restart(self) -> None:
        self.stop_gateway()
        self.start_gateway()

    def page(self, **params: Any) -> dict[str, Any]:
        answer = self.api.get("/v1/invocations", params=params)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


@pytest.fixture
def edge(kafka: KafkaContainer, tmp_path: Path) -> Iterator[Edge]:
    running = Edge(kafka.bootstrap, tmp_path)
    running.start_gateway()
    yield running
    running.stop()


def test_a_restarted_gateway_resumes_from_its_offsets_and_answers_at_once(edge: Edge) -> None:
    edge.write(encoded(*(result(f"inv-{n:06x}", "first", n) for n in range(40))))
    assert edge.indexed(40)["read"][edge.results_topic] == 40
    edge.restart()
    stats = edge.stats()
    assert stats["read"][edge.results_topic] == 0  # nothing new: nothing read
    assert stats["invocations"] == 40
    assert len(edge.page(function="first", limit=100)["invocations"]) == 40
    edge.stop_gateway()
    edge.write(encoded(*(result(f"inv-{n:06x}", "second", n) for n in range(40, 50))))
    edge.start_gateway()
    stats = edge.stats()
    assert stats["read"][edge.results_topic] == 10
    assert (stats["invocations"], stats["rebuilt"]) == (50, None)
    whole = edge.api.get("/v1/invocations/inv-00002a").json()
    assert (whole["output"], whole["logs"], whole["callbacks"]) == (
        "output inv-00002a v42", "log of inv-00002a", [])


def test_a_damaged_index_file_is_rebuilt_from_kafka(edge: Edge) -> None:
    edge.write(encoded(*(result(f"inv-{n:06x}", "f", n) for n in range(12))))
    edge.indexed(12)
    edge.stop_gateway()
    for suffix in ("-wal", "-shm"):
        Path(f"{edge.index_file}{suffix}").unlink(missing_ok=True)
    edge.index_file.write_bytes(b"\x00garbage" * 4096)
    edge.start_gateway()
    stats = edge.stats()
    assert "unreadable" in stats["rebuilt"]
    assert (stats["invocations"], stats["read"][edge.results_topic]) == (12, 12)


def test_stored_offsets_beyond_the_topic_rebuild_the_index(edge: Edge) -> None:
    """A file from another cluster, or a topic that was recreated: its offsets are past
    the end of the topic, so it is read again from the beginning."""
    edge.write(encoded(*(result(f"inv-{n:06x}", "f", n) for n in range(5))))
    edge.indexed(5)
    edge.stop_gateway()
    with sqlite3.connect(edge.index_file) as db:
        db.execute("UPDATE offsets SET next = next + 1000")
        db.execute("DELETE FROM invocations WHERE id = 'inv-000001'")
    edge.start_gateway()
    stats = edge.stats()
    assert "outside" in stats["rebuilt"]
    assert stats["invocations"] == 5


def test_unreadable_records_are_skipped_and_counted(edge: Edge) -> None:
    good = result("inv-000001", "f")
    edge.write([(b"inv-bad", b"{not json"), (b"inv-list", b"[1, 2]"),
                (b"inv-partial", b'{"invocation_id": "inv-partial"}'), *encoded(good)])
    edge.indexed(1)
    # the records lie in several partitions: the good one may be indexed before the others
    stats = wait_for(lambda: (s := edge.stats())["skipped"].get(edge.results_topic) == 3 and s)
    assert stats, edge.stats()
    assert edge.api.get("/v1/invocations/inv-000001").json()["output"] == "output inv-000001 v0"


def test_queries_validate_their_input_and_unknown_ids_are_404(edge: Edge) -> None:
    edge.write(encoded(*(result(f"inv-{n:06x}", "f", n, status=Status.FAILED if n % 2
                                else Status.SUCCEEDED) for n in range(7))))
    edge.indexed(7)
    seen, cursor = [], None
    while True:
        page = edge.page(function="f", status="failed", limit=2, **(
            {"cursor": cursor} if cursor else {}))
        seen += [r["invocation_id"] for r in page["invocations"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == ["inv-000005", "inv-000003", "inv-000001"]
    assert "output" not in edge.page()["invocations"][0]
    for params in ({"limit": 0}, {"limit": 1001}, {"cursor": "nonsense"},
                   {"since": "yesterday"}, {"since": "0.0"}, {"until": "1700000000"},
                   {"status": "sleeping"}):
        answer = edge.api.get("/v1/invocations", params=params)
        assert answer.status_code == 422, (params, answer.text)
    assert edge.api.get("/v1/invocations/never").status_code == 404
    assert edge.api.get("/v1/events/never").status_code == 404


def test_an_events_invocations_and_the_event_from_its_topic(platform: Platform,
                                                            unique: str) -> None:
    platform.deploy(f"{unique}-echo", "faasflow/echo:latest")
    hook = platform.webhook(unique, unique)
    platform.subscribe(f"{unique}-echo", unique)
    event_id = platform.deliver(hook, b"look me up")
    (done,) = platform.results(event_id)
    found = platform.api.get(f"/v1/events/{event_id}").json()
    assert found["event"]["id"] == event_id
    assert found["event"]["data"] == "look me up"
    assert [i["invocation_id"] for i in found["invocations"]] == [done["invocation_id"]]
    listed = platform.api.get("/v1/invocations", params={"source": unique}).json()
    assert [i["invocation_id"] for i in listed["invocations"]] == [done["invocation_id"]]
    recent = platform.api.get(f"/v1/functions/{unique}-echo/invocations").json()
    assert [r["output"] for r in recent] == [done["output"]]


async def compact_soon(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(
            ConfigResourceType.TOPIC, topic,
            {"segment.ms": "100", "min.cleanable.dirty.ratio": "0.001",
             "cleanup.policy": "compact"})])
    finally:
        await admin.close()


@pytest.mark.timeout(300)  # the log cleaner runs every 15 s, on its own schedule
def test_after_compaction_the_index_holds_the_latest_states(edge: Edge) -> None:
    keys = [f"inv-{n:06x}" for n in range(30)]
    statuses = (Status.PENDING, Status.RUNNING, Status.FAILED, Status.SUCCEEDED)
    history = [result(k, "f", v, status=statuses[min(v, 3)]) for v in range(8) for k in keys]
    edge.write([*encoded(*history), (keys[0].encode(), None)])
    edge.indexed(29)
    asyncio.run(compact_soon(edge.bootstrap, edge.results_topic))

    def compacted() -> bool:
        time.sleep(0.5)
        edge.write(encoded(result("inv-ffffff", "roll")))  # rolls the segment to clean
        kafka = KafkaSettings(bootstrap=edge.bootstrap)
        return len(asyncio.run(read_from(kafka, edge.results_topic, {}))) < len(history)

    assert wait_for(compacted, timeout_s=120, every_s=2), "the log cleaner did not run"
    assert edge.api.get(f"/v1/invocations/{keys[1]}").json()["output"] == f"output {keys[1]} v7"
    edge.stop_gateway()
    edge.index_file.unlink()
    edge.start_gateway()
    rows = {r["invocation_id"]: r for r in edge.page(function="f", limit=100)["invocations"]}
    assert sorted(rows) == keys[1:]
    assert {r["status"] for r in rows.values()} == {"succeeded"}
    assert edge.api.get(f"/v1/invocations/{keys[0]}").status_code == 404
    latest = edge.api.get(f"/v1/invocations/{keys[2]}").json()
    assert (latest["status"], latest["output"]) == ("succeeded", f"output {keys[2]} v7")


def test_a_broker_that_stops_answering_gives_503_for_what_needs_it(tmp_path: Path) -> None:
    broker = KafkaContainer().start()
    edge = Edge(broker.bootstrap, tmp_path)
    try:
        edge.start_gateway()
        edge.write(encoded(*(result(f"inv-{n:06x}", "f", n) for n in range(3))))
        edge.indexed(3)
        hook = edge.webhook("paused", "paused")
        deliveries = f"/v1/webhooks/{hook['id']}/deliveries"
        assert edge.api.get(deliveries).json() == []
        container = broker.container.get_wrapped_container()
        container.pause()
        try:
            started = time.monotonic()
            assert edge.api.get("/v1/invocations/inv-000001").status_code == 503
            assert time.monotonic() - started < 15
            assert len(edge.page(function="f")["invocations"]) == 3  # the index alone
            started = time.monotonic()  # read from the log, bounded by 3 publish timeouts
            assert edge.api.get(deliveries).status_code == 503
            assert time.monotonic() - started < 20
        finally:
            container.unpause()
        assert wait_for(lambda: edge.api.get("/v1/invocations/inv-000001").status_code == 200)
    finally:
        edge.stop()
        broker.stop()


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from pipeline.cli.main import app; app()", *args]


def cli_env(edge: Edge) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO),
            "FAASFLOW_GATEWAY_PORT": edge.url.rsplit(":", 1)[1],
            "FAASFLOW_GATEWAY_AUTH_TOKEN": TOKEN, "FAASFLOW_STATE_DIR": str(edge.state_dir),
            "COLUMNS": "200"}


def test_the_cli_lists_shows_and_follows_invocations(edge: Edge) -> None:
    now = datetime.now(UTC)
    recent = [replace(result(f"inv-{n:06x}", "f", n, status=Status.FAILED if n % 2
                             else Status.SUCCEEDED), queued_at=timestamp(now))
              for n in range(6)]
    edge.write(encoded(*recent, result("inv-00000a", "f", 10)))  # queued long ago
    edge.indexed(7)
    listed = subprocess.run(cli("invocation", "list", "--function", "f", "--status",
                                "failed", "--since", "1h", "--json"),
                            env=cli_env(edge), capture_output=True, timeout=60, check=True)
    assert {r["invocation_id"] for r in json.loads(listed.stdout)} == {
        "inv-000001", "inv-000003", "inv-000005"}
    shown = subprocess.run(cli("invocation", "show", "inv-000002"), env=cli_env(edge),
                           capture_output=True, timeout=60, check=True)
    assert "output inv-000002 v2" in shown.stdout.decode()
    assert "log of inv-000002" in shown.stdout.decode()
    with subprocess.Popen(cli("logs", "f", "--follow", "--interval", "0.2"),
                          env=cli_env(edge), stdout=subprocess.PIPE) as following:
        try:
            assert following.stdout is not None
            lines = iter(following.stdout.readline, b"")
            assert any(b"log of inv-000005" in line for line in lines)  # the recent ones
            landed = replace(result("inv-00000b", "f", 11), queued_at=timestamp(
                datetime.now(UTC)))
            edge.write(encoded(landed))
            assert any(b"log of inv-00000b" in line for line in lines)  # as it lands
        finally:
            following.terminate()
