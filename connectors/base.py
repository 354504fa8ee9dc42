"""The connector port: what a source of events implements, and what it is given.

    Connector.run(sink)  ──►  sink.resume()      where did I stop? what did I publish since?
                         ──►  sink.commit(...)   publish a batch, then record the checkpoint

A connector keeps no state of its own between runs: everything it needs to resume is in
the checkpoint it commits with each batch. ``Sink.resume`` also returns the events
published after the last checkpoint (a crash between the two writes), so a restarted
connector neither repeats nor skips them.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline.records import Event

Checkpoint = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Resumption:
    """Where a connector left off: its last checkpoint (None on the first run), and the
    events it published after that checkpoint was written, in publishing order."""

    checkpoint: Checkpoint | None
    published_since: Sequence[Event] = field(default_factory=tuple)


class Sink(Protocol):
    async def resume(self) -> Resumption:
        """Called once, before the first ``commit``."""
        ...

    async def commit(self, events: Sequence[Event], checkpoint: Checkpoint) -> None:
        """Publish ``events`` in order, then record ``checkpoint``; returns once Kafka has
        acknowledged both. Raises ``BrokerUnavailable`` when it could not: the connector
        then backs off and commits the same batch again (event ids are deterministic, so
        a retried batch that partly landed is still one event per id downstream)."""
        ...


class Connector(Protocol):
    name: str

    async def run(self, sink: Sink) -> None:
        """Run until cancelled. Errors of the outside world (RPC failures, disconnects,
        HTTP errors) are retried with ``Backoff``; ``run`` only ends by cancellation."""
        ...


class Backoff:
    """Exponential backoff with full jitter, as AWS's architecture blog describes it."""

    def __init__(self, base_s: float = 0.5, cap_s: float = 30.0) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self.failures = 0

    def next_delay(self) -> float:
        self.failures += 1
        return random.uniform(0, min(self.cap_s, self.base_s * 2 ** (self.failures - 1)))

    async def wait(self) -> None:
        await asyncio.sleep(self.next_delay())

    def reset(self) -> None:
        self.failures = 0
