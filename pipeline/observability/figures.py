"""The cluster-wide figures a gateway process shows, read from shared state, so that every
gateway process shows the same ones: ``/metrics`` (``collector``) and the dashboard's pulse
(``pulse``) both read them here, and nothing else reads Kafka offsets for them.

    part     read from                                         what
    kafka    the event topics and the starter's group          events per source, its lag
    index    the results index's totals (``index.tally``)      Results that ended, durations
    docker   the Docker Engine, warm containers by label       warm containers per function
    —        the dead-letter topic, followed (``ParkedLetters``) dead letters parked now

Each part is read in a task of its own, at most one read of it at a time, so that a slow
one (the broker down: its reads time out after seconds) holds up neither the others nor
whoever waits for a reading: ``refresh`` waits a bounded time and then answers with what
is known. A part keeps its last two readings (rates are taken between them) and whether its
last attempt failed; a failure is logged once, when it begins, and once when it ends.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from pipeline.autoscale.lag import starter_reads
from pipeline.deadletters import DeadLetter
from pipeline.index.tally import Tally
from pipeline.kafka import CompactedView
from pipeline.kafka.admin import LagReader
from pipeline.records import strict_loads
from pipeline.runtime.warm import WarmCount
from pipeline.settings import KafkaSettings, Settings
from pipeline.topics import Topics

log = logging.getLogger(__name__)

T = TypeVar("T")
STALE_INTERVALS = 3


class Index(Protocol):
    async def tally(self) -> Tally: ...  # pipeline.index.ResultsIndex


class Warm(Protocol):
    async def census(self) -> Mapping[str, WarmCount]: ...  # pipeline.runtime.warm.WarmRunner


@dataclass(frozen=True, slots=True)
class Streams:
    """The event topics as one reading found them: by source, the records ever written to
    its topic (end offsets), and the starter's lag on it where the starter has committed
    (a source nobody subscribes to has none; see ``pipeline.autoscale.lag``)."""

    events: Mapping[str, int]
    lag: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Timed(Generic[T]):
    at: float  # unix seconds
    value: T


class Part(Generic[T]):
    """One kind of figure and its last two readings (see the module docstring). It is
    ``up`` while its last attempt succeeded, within ``stale_after_s`` (a read that hangs,
    before it times out, makes it stale)."""

    def __init__(self, name: str, read: Callable[[], Awaitable[T]],
                 clock: Callable[[], float] = time.time,
                 stale_after_s: float = math.inf) -> None:
        self.name = name
        self._read = read
        self._clock = clock
        self._stale_after_s = stale_after_s
        self.latest: Timed[T] | None = None
        self.previous: Timed[T] | None = None
        self.failing: str | None = None  # why the last attempt failed
        self._task: asyncio.Task[None] | None = None

    @property
    def up(self) -> bool:
        return (self.latest is not None and self.failing is None
                and self._clock() - self.latest.at <= self._stale_after_s)

    def poke(self) -> asyncio.Task[None]:
        """A read of the part: the one under way, or a new one."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._attempt(), name=f"figures:{self.name}")
        return self._task

    async def _attempt(self) -> None:
        try:
            value = await self._read()
        except Exception as exc:  # whatever fails, the figures go on: it is logged, shown
            if self.failing is None:
                log.warning("figures: %s cannot be read: %s", self.name, exc)
            self.failing = str(exc) or type(exc).__name__
            return
        if self.failing is not None:
            log.info("figures: %s read again", self.name)
        self.failing = None
        self.previous, self.latest = self.latest, Timed(self._clock(), value)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class ParkedLetters:
    """The dead-letter topic folded as ``pipeline.redrive`` folds it (a later record of a
    key supersedes an earlier one): the letters not redriven, by (function, reason). It
    holds one entry per letter parked, not per letter ever written."""

    def __init__(self) -> None:
        self._parked: dict[bytes, tuple[str, str]] = {}

    def apply(self, key: bytes, value: bytes | None) -> None:
        letter = DeadLetter.from_dict(strict_loads(value)) if value else None
        if letter is None or letter.redriven_at is not None:
            self._parked.pop(key, None)
        else:
            self._parked[key] = (letter.function or "", letter.reason.value)

    def counts(self) -> Counter[tuple[str, str]]:
        return Counter(self._parked.values())


class EventStreams:
    """The ``kafka`` part: the event topics' end offsets and the starter's lag on them, in
    one reading of a ``LagReader`` (the autoscaler's)."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._topics = Topics(kafka)
        self._lag = LagReader(kafka, [starter_reads(self._topics)],
                              ends_under=self._topics.events_prefix)

    async def read(self) -> Streams:
        lag = await self._lag.read()
        source_of = self._topics.source_of
        return Streams(
            {source: n for topic, n in lag.ends.items() if (source := source_of(topic))},
            {source: n for topic, n in lag.by_topic[self._topics.starter_group].items()
             if (source := source_of(topic))})

    async def close(self) -> None:
        await self._lag.close()


class StreamSource(Protocol):
    async def read(self) -> Streams: ...

    async def close(self) -> None: ...


class Followed(Protocol):
    """A topic followed into memory (``pipeline.kafka.CompactedView``)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def problem(self) -> str | None: ...


class Figures:
    """The parts, and the dead letters parked (``letters`` follows the dead-letter topic
    into ``parked``); ``of`` makes them from the gateway's adapters."""

    def __init__(self, streams: StreamSource, index: Index, warm: Warm, parked: ParkedLetters,
                 letters: Followed, stale_after_s: float = math.inf,
                 clock: Callable[[], float] = time.time) -> None:
        self._source = streams
        self.streams: Part[Streams] = Part("kafka", streams.read, clock, stale_after_s)
        self.tally: Part[Tally] = Part("index", index.tally, clock, stale_after_s)
        self.warm: Part[Mapping[str, WarmCount]] = Part("docker", warm.census, clock,
                                                        stale_after_s)
        self.parts: tuple[Part[Any], ...] = (self.streams, self.tally, self.warm)
        self.parked = parked
        self.letters = letters

    @classmethod
    def of(cls, settings: Settings, index: Index, warm: Warm) -> Figures:
        """Read every ``FAASFLOW_METRICS_INTERVAL_S``: a part not read for
        ``STALE_INTERVALS`` of them is not up."""
        parked = ParkedLetters()
        return cls(EventStreams(settings.kafka), index, warm, parked,
                   CompactedView(settings.kafka, Topics(settings.kafka).deadletter,
                                 parked.apply),
                   stale_after_s=STALE_INTERVALS * settings.metrics.interval_s)

    async def start(self, wait_s: float) -> None:
        """Follow the dead letters, and read every part once (waiting at most ``wait_s``)."""
        await self.letters.start()
        await self.refresh(wait_s)

    async def refresh(self, wait_s: float) -> None:
        """Read every part again, and wait at most ``wait_s`` for them (a part whose read
        is still under way then keeps what it knew: its read goes on)."""
        await asyncio.wait([part.poke() for part in self.parts], timeout=wait_s)

    async def stop(self) -> None:
        for part in self.parts:
            await part.stop()
        await self._source.close()
        await self.letters.stop()
