"""Reading the dead-letter topic, and putting dead-lettered invocations back to work.

The topic is read on demand, from the first record of the time window asked for (Kafka
finds it by timestamp), so nothing of it is kept in memory between requests. Records are
folded by key, the latest winning: a dead letter that was redriven shows ``redriven_at``,
and one that failed again after its redrive is dead again. Listings leave event data out
(``get`` has the whole record); a redrive keeps at most ``limit`` whole invocations.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import datetime

from pipeline.deadletters import DeadLetter, Reason
from pipeline.execution import pending
from pipeline.kafka import offsets_at, scan
from pipeline.records import strict_loads
from pipeline.registry import stamp_invocation
from pipeline.settings import KafkaSettings
from pipeline.topics import Topics
from pipeline.writer import Writer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Filter:
    function: str | None = None
    reason: Reason | None = None
    since: datetime | None = None
    until: datetime | None = None
    redrivable: bool | None = None  # only those that can (True) or cannot (False) be redriven
    keys: frozenset[str] | None = None  # only these letters

    def matches(self, letter: DeadLetter) -> bool:
        at = datetime.fromisoformat(letter.dead_at)
        return ((self.keys is None or letter.key in self.keys)
                and (self.function is None or letter.function == self.function)
                and (self.reason is None or letter.reason is self.reason)
                and (self.since is None or at >= self.since)
                and (self.until is None or at < self.until)
                and (self.redrivable is None or letter.redrivable == self.redrivable))


@dataclass(frozen=True, slots=True)
class Redriven:
    redriven: list[str]  # the keys put back to work
    remaining: int  # matched and redrivable, beyond the limit: redrive again
    skipped: int  # matched, but cannot be redriven (no invocation, or redriven already)


def summary(letter: DeadLetter) -> DeadLetter:
    """The letter without the bulk: the invocation's event data and the raw record."""
    invocation = letter.invocation
    if invocation is not None:
        invocation = replace(invocation, event=replace(invocation.event, data=b""))
    return replace(letter, invocation=invocation, raw=None)


class DeadLetterLog:
    def __init__(self, kafka: KafkaSettings, topics: Topics, writer: Writer,
                 registry_position: Callable[[], int]) -> None:
        self._kafka = kafka
        self._topics = topics
        self._writer = writer
        self._registry_position = registry_position  # how far this gateway read the registry

    async def _letters(self, since: datetime | None) -> AsyncIterator[DeadLetter]:
        topic = self._topics.deadletter
        start = {}
        if since is not None and since.timestamp() > 0:  # Kafka's clock starts in 1970
            start = await offsets_at(self._kafka, topic, since.timestamp())
        async for partition, offset, _, value in scan(self._kafka, topic, start):
            try:
                yield DeadLetter.from_dict(strict_loads(value or b""))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("skipping unreadable dead letter %s[%d]@%d: %r", topic, partition,
                            offset, exc)

    async def find(self, where: Filter, limit: int) -> list[DeadLetter]:
        """The latest state of each matching dead letter, newest first."""
        latest: dict[str, DeadLetter] = {}
        async for letter in self._letters(where.since):
            latest.pop(letter.key, None)
            latest[letter.key] = summary(letter)
        found = [letter for letter in latest.values() if where.matches(letter)]
        found.sort(key=lambda letter: letter.dead_at, reverse=True)
        return found[:limit]

    async def whole(self, key: str) -> list[DeadLetter]:
        """The dead letter under ``key``, whole, in its latest state (none: an empty list)."""
        found: DeadLetter | None = None
        async for letter in self._letters(None):
            if letter.key == key:
                found = letter
        return [found] if found is not None else []

    async def redrive(self, where: Filter, limit: int) -> Redriven:
        """Put matching dead-lettered invocations back on the invocations topic, oldest
        first, at most ``limit`` of them: each runs again from its first attempt, under the
        same invocation id (its Result is replaced), and its dead letter is marked."""
        chosen: dict[str, DeadLetter] = {}
        remaining: set[str] = set()
        skipped: set[str] = set()
        async for letter in self._letters(where.since):
            chosen.pop(letter.key, None)  # a later record of a key supersedes the earlier
            remaining.discard(letter.key)
            skipped.discard(letter.key)
            if not where.matches(letter):
                continue
            if not letter.redrivable:
                skipped.add(letter.key)
            elif len(chosen) < limit:
                chosen[letter.key] = letter
            else:
                remaining.add(letter.key)
        for letter in chosen.values():
            assert letter.invocation is not None  # redrivable
            invocation = stamp_invocation(
                replace(letter.invocation, attempt=1, redrive=letter.invocation.redrive + 1),
                self._registry_position())  # a fix deployed just before is what runs
            await self._writer.write(pending(invocation))
            await self._writer.enqueue(invocation)
            await self._writer.dead_letter(letter.redriven())
            log.info("redrove invocation %s of %s", invocation.id, invocation.function)
        return Redriven(list(chosen), len(remaining), len(skipped))
