"""Helpers of the replay tests: events written straight to a source's topic, replays asked
for and watched through the API, and a replay's Results read back from the results topic."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from typing import Any

from aiokafka import AIOKafkaProducer

from pipeline.ids import new_event_id
from pipeline.records import Event, dumps
from tests.integration.load import read_results
from tests.integration.platform import Platform

ECHO = "def main(args):\n    return args\n"
FINAL = ("succeeded", "failed", "timeout")


def produce(platform: Platform, source: str, bodies: list[str]) -> list[str]:
    """Events with these text bodies, written to ``source``'s topic as any producer
    could; their ids, in order."""
    events = [Event(id=new_event_id(), source=source, type="test.replayed", data=body.encode(),
                    datacontenttype="text/plain") for body in bodies]

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=platform.env["FAASFLOW_KAFKA_BOOTSTRAP"],
                                    acks="all", linger_ms=5)
        await producer.start()
        try:
            sent = [await producer.send(f"{platform.prefix}.events.{source}",
                                        dumps(e.to_dict()), key=e.id.encode()) for e in events]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()

    asyncio.run(send())
    return [e.id for e in events]


def source_with_function(platform: Platform, source: str, function: str,
                         code: str = ECHO, subscribe: bool = False) -> None:
    """A source (a webhook declares it) and a warm function, subscribed to it or not."""
    platform.webhook(source, source)
    platform.deploy(function, None, runtime="python", code=code, mode="warm", min_warm=1,
                    max_concurrency=8)
    if subscribe:
        platform.subscribe(function, source)


def ask(platform: Platform, **body: Any) -> dict[str, Any]:
    response = platform.api.post("/v1/replays", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def listed(platform: Platform, replay_id: str) -> dict[str, Any]:
    """The replay as the list shows it (the runner's checkpoint, no index lookup)."""
    response = platform.api.get("/v1/replays")
    assert response.status_code == 200, response.text
    (found,) = [r for r in response.json() if r["id"] == replay_id]
    return dict(found)


def until_ended(platform: Platform, replay_id: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while (found := listed(platform, replay_id))["status"] == "running":
        assert time.monotonic() < deadline, found
        time.sleep(0.3)
    return found


def replay_results(platform: Platform, replay_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every Result record of the replay in the results topic, by invocation id."""
    written = read_results(platform.env["FAASFLOW_KAFKA_BOOTSTRAP"], platform.prefix)
    return {ident: records for ident, records in written.by_invocation.items()
            if records[0]["replay_id"] == replay_id}


def until_final(platform: Platform, replay_id: str, count: int,
                timeout_s: float = 180) -> dict[str, list[dict[str, Any]]]:
    """The replay's Results once ``count`` of them are final (or the timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = replay_results(platform, replay_id)
        final = sum(1 for records in found.values() if records[-1]["status"] in FINAL)
        if final >= count or time.monotonic() > deadline:
            return found
        time.sleep(1)


def once_each(found: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Per event id, how many invocations the replay made of it (the caller checks 1 each);
    and no invocation has two different final records."""
    per_event: dict[str, int] = defaultdict(int)
    for ident, records in found.items():
        per_event[records[0]["event_id"]] += 1
        finals = {json.dumps(r, sort_keys=True) for r in records if r["status"] in FINAL}
        assert len(finals) <= 1, f"invocation {ident} has {len(finals)} final records"
    return dict(per_event)
