"""Load for the fault suite: webhook deliveries sent concurrently, and the results topic
read back whole, straight from Kafka, to count what was written."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from pipeline.kafka import scan
from pipeline.settings import KafkaSettings
from pipeline.topics import Topics


@dataclass
class Sent:
    """What the senders got: event ids acknowledged (202), refusals by status, and requests
    that got no answer in time; each answer's latency."""

    acknowledged: list[str] = field(default_factory=list)
    refused: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    unanswered: int = 0
    slowest_s: float = 0.0


async def deliver(url: str, bodies: Iterable[bytes], concurrency: int = 16,
                  timeout_s: float = 20.0, rate: float | None = None) -> Sent:
    """POST each body to ``url`` (``rate`` per second at most, if given)."""
    sent = Sent()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    start, count = time.monotonic(), 0

    async def sender(client: httpx.AsyncClient) -> None:
        nonlocal count
        while not queue.empty():
            body = queue.get_nowait()
            assert body is not None
            if rate is not None:
                count += 1
                await asyncio.sleep(max(0.0, start + count / rate - time.monotonic()))
            began = time.monotonic()
            try:
                response = await client.post(url, content=body,
                                             headers={"Content-Type": "text/plain"})
            except httpx.HTTPError:
                sent.unanswered += 1
                continue
            finally:
                sent.slowest_s = max(sent.slowest_s, time.monotonic() - began)
            if response.status_code == 202:
                sent.acknowledged.append(response.json()["event_id"])
            else:
                sent.refused[response.status_code] += 1

    async with httpx.AsyncClient(timeout=timeout_s) as client:
        await asyncio.gather(*(sender(client) for _ in range(concurrency)))
    return sent


class Background(threading.Thread):
    """``deliver`` in a thread of its own, so the test can break things meanwhile."""

    def __init__(self, url: str, bodies: list[bytes], concurrency: int = 16,
                 timeout_s: float = 20.0, rate: float | None = None) -> None:
        super().__init__(daemon=True)
        self._work = (url, bodies, concurrency, timeout_s, rate)
        self.sent: Sent | None = None
        self.start()

    def run(self) -> None:
        self.sent = asyncio.run(deliver(*self._work))

    def wait(self, timeout_s: float = 600) -> Sent:
        self.join(timeout_s)
        assert self.sent is not None, "the senders did not finish"
        return self.sent


@dataclass
class Written:
    """Every Result record in the results topic, by invocation id, in log order."""

    by_invocation: dict[str, list[dict[str, Any]]]

    def finals(self) -> dict[str, list[dict[str, Any]]]:
        return {ident: [r for r in records if r["status"] in ("succeeded", "failed", "timeout")]
                for ident, records in self.by_invocation.items()}

    def by_event(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = defaultdict(set)
        for ident, records in self.by_invocation.items():
            found[str(records[0]["event_id"])].add(ident)
        return found


def read_results(bootstrap: str, prefix: str) -> Written:
    kafka = KafkaSettings(bootstrap=bootstrap, topic_prefix=prefix)

    async def read() -> Written:
        found: dict[str, list[dict[str, Any]]] = defaultdict(list)
        async for _, _, key, value in scan(kafka, Topics(kafka).results, {}):
            if key is not None and value is not None:
                found[key.decode()].append(json.loads(value))
        return Written(dict(found))

    return asyncio.run(read())


def wait_until_final(bootstrap: str, prefix: str, events: Iterable[str], per_event: int,
                     timeout_s: float) -> Written:
    """Read the results topic until each event has ``per_event`` final Results."""
    wanted = set(events)
    deadline = time.monotonic() + timeout_s
    while True:
        written = read_results(bootstrap, prefix)
        finals = written.finals()
        done = {event for event, idents in written.by_event().items()
                if len(idents) == per_event and all(finals[i] for i in idents)}
        if wanted <= done or time.monotonic() > deadline:
            return written
        time.sleep(2)


def report(name: str, sent: Sent, written: Written, functions: int) -> dict[str, Any]:
    """Figures per fault: sent, acknowledged, final, lost, duplicated; printed for the
    closing note and checked by the caller."""
    finals = written.finals()
    by_event = written.by_event()
    acknowledged = set(sent.acknowledged)
    complete = {e for e in acknowledged if len(by_event.get(e, ())) == functions
                and all(finals[i] for i in by_event[e])}
    figures = {
        "fault": name, "sent": len(sent.acknowledged) + sum(sent.refused.values())
        + sent.unanswered, "acknowledged": len(acknowledged),
        "refused": dict(sent.refused), "unanswered": sent.unanswered,
        "final": sum(1 for records in finals.values() if records),
        "lost": len(acknowledged - complete),
        # a final Result written again unchanged (a producer's retry after the broker came
        # back) is still one Result; two that differ are a duplicate
        "rewritten": sum(1 for records in finals.values() if len(records) > 1),
        "duplicated": sum(1 for records in finals.values()
                          if len({json.dumps(r, sort_keys=True) for r in records}) > 1),
        "slowest_answer_s": round(sent.slowest_s, 2),
    }
    print(f"\nCHAOS {figures}")
    for records in finals.values():
        if len({json.dumps(r, sort_keys=True) for r in records}) > 1:
            print("CHAOS a duplicate:", *records, sep="\n  ")
            break
    return figures
