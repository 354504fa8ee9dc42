"""The replay runner against in-memory ports: what it queues, how it checkpoints, and what
a runner that takes over from a dead one queues again."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence

import pytest

from pipeline.errors import BrokerUnavailable
from pipeline.finals import RecentFinals
from pipeline.ids import invocation_id
from pipeline.kafka import Record
from pipeline.records import Event, Invocation, Position, Result, Status, dumps, strict_loads
from pipeline.registry import Registry, encode, record_key
from pipeline.replays.ranges import Ranges
from pipeline.replays.records import Progress, ReplayRequest
from pipeline.replays.records import Status as ReplayStatus
from pipeline.replays.runner import Runner, planner

from .support import event, subscription

SOURCE = "orders"
LIMIT = 1024 * 1024


def records(count: int, partitions: int = 2) -> list[Record]:
    """``count`` events spread over ``partitions``; event i at offset i // partitions."""
    return [(i % partitions, i // partitions, None,
             dumps(event(b'{"n":%d}' % i, "application/json", ident=f"ev-{i}").to_dict()))
            for i in range(count)]


class MemorySource:
    def __init__(self, log: list[Record]) -> None:
        self.log = log

    async def read(self, ranges: Ranges, max_records: int) -> AsyncIterator[list[Record]]:
        wanted = [r for r in self.log if ranges.get(r[0], (0, 0))[0] <= r[1] < ranges[r[0]][1]]
        for at in range(0, len(wanted), max_records):
            yield wanted[at:at + max_records]


class MemoryOutput:
    """Written pending Results and invocations, in the order written (``log``); dies
    (raises) at invocations write ``die_at``; ``unacknowledged`` writes of invocations
    land but their acknowledgement is lost."""

    def __init__(self, die_at: int | None = None, unacknowledged: int = 0) -> None:
        self.pending: list[Result] = []
        self.queued: list[Invocation] = []
        self.log: list[tuple[str, str]] = []
        self.writes = 0
        self.die_at = die_at
        self.unacknowledged = unacknowledged

    async def write_pending(self, records: Sequence[tuple[str, bytes]]) -> None:
        results = [Result.from_dict(strict_loads(value)) for _, value in records]
        assert [key for key, _ in records] == [r.invocation_id for r in results]
        self.pending.extend(results)
        self.log.extend(("pending", r.invocation_id) for r in results)

    async def enqueue_many(self, records: Sequence[tuple[str, bytes]]) -> None:
        invocations = [Invocation.from_dict(strict_loads(value)) for _, value in records]
        assert [key for key, _ in records] == [i.queue_key for i in invocations]
        self.writes += 1
        if self.writes == self.die_at:
            self.queued.extend(invocations[: len(invocations) // 2])  # half landed
            raise RuntimeError("killed")
        self.queued.extend(invocations)
        self.log.extend(("queued", i.id) for i in invocations)
        if self.unacknowledged:
            self.unacknowledged -= 1
            raise BrokerUnavailable("publishing to invocations: Kafka did not answer")


class MemoryCheckpoints:
    def __init__(self) -> None:
        self.saved: list[Progress] = []

    async def save(self, progress: Progress) -> None:
        self.saved.append(progress)


def registry(*functions: str) -> Registry:
    found = Registry()
    for n, function in enumerate(functions):
        record = subscription(f"s{n}", function, SOURCE)
        found.apply(record_key(record).encode(), encode(record))
    return found


def request(log: list[Record], **fields: object) -> ReplayRequest:
    ends: dict[int, int] = {}
    for partition, offset, _, _ in log:
        ends[partition] = max(ends.get(partition, 0), offset + 1)
    return ReplayRequest(id="rp_1", source=SOURCE, ranges={p: (0, e) for p, e in ends.items()},
                         **fields)  # type: ignore[arg-type]


def runner(req: ReplayRequest, log: list[Record], output: MemoryOutput,
           checkpoints: MemoryCheckpoints, *, functions: Registry | None = None,
           progress: Progress | None = None, finals: RecentFinals | None = None,
           stopping: bool = False, match: object = None) -> Runner:
    plan = planner(req, functions or registry("zip", "audit"), match)  # type: ignore[arg-type]
    return Runner(req, progress or Progress.start(req), plan, MemorySource(log), output,
                  checkpoints, finals or RecentFinals(600), lambda: stopping, limit=LIMIT,
                  every=4, batch=4, interval_s=0.0)


async def test_every_event_goes_to_every_subscribed_function_with_the_replay_id() -> None:
    log = records(10)
    out, saved = MemoryOutput(), MemoryCheckpoints()

    done = await runner(request(log), log, out, saved).run()

    assert (done.status, done.read, done.matched, done.invoked) == (ReplayStatus.DONE, 10, 10, 20)
    assert done.next == {0: 5, 1: 5}
    assert len({i.id for i in out.queued}) == 20
    first = next(i for i in out.queued if i.event.id == "ev-3" and i.function == "zip")
    assert first.replay_id == "rp_1"
    assert first.event_position == Position(1, 1)
    assert first.id == invocation_id(SOURCE, first.event, "zip", "rp_1")
    assert {r.invocation_id for r in out.pending} == {i.id for i in out.queued}
    assert {r.status for r in out.pending} == {Status.PENDING}
    assert saved.saved[-1] == done


async def test_with_a_function_only_it_runs_and_a_shadow_replay_marks_its_runs() -> None:
    log = records(4)
    out = MemoryOutput()

    await runner(request(log, function="zip-v2", compare_with="zip"), log, out,
                 MemoryCheckpoints()).run()

    assert {i.function for i in out.queued} == {"zip-v2"}  # not subscribed, still replayed
    assert all(i.shadow for i in out.queued)
    assert all(r.shadow for r in out.pending)


async def test_the_replay_filter_selects_events_and_undecodable_records_are_skipped() -> None:
    log = [*records(6), (0, 3, None, b"not json")]

    def even(e: Event) -> bool:
        return int(e.id.removeprefix("ev-")) % 2 == 0

    done = await runner(request(log, function="zip"), log, MemoryOutput(), MemoryCheckpoints(),
                        match=even).run()

    assert (done.read, done.matched, done.invoked) == (7, 3, 3)


async def test_a_cancelled_replay_stops_feeding() -> None:
    log = records(10)
    out = MemoryOutput()

    done = await runner(request(log), log, out, MemoryCheckpoints(), stopping=True).run()

    assert done.status is ReplayStatus.CANCELLED
    assert out.queued == []


async def test_it_checkpoints_a_planned_mark_before_writing_past_it() -> None:
    log = records(20)
    saved = MemoryCheckpoints()

    await runner(request(log), log, MemoryOutput(), saved).run()

    for before, after in zip(saved.saved, saved.saved[1:], strict=False):
        for p, offset in after.next.items():
            assert offset <= before.planned[p]  # nothing past a mark saved before it


async def test_a_runner_taking_over_queues_each_event_once_and_hides_no_result() -> None:
    log = records(20)
    req = request(log)
    dead, saved = MemoryOutput(die_at=3), MemoryCheckpoints()
    with pytest.raises(RuntimeError, match="killed"):
        await runner(req, log, dead, saved).run()
    checkpoint = saved.saved[-1]
    assert checkpoint.planned != checkpoint.next  # died inside its window
    finals = RecentFinals(600)
    ran = dead.queued[0]  # one of those queued before the crash has started running since
    finals.add(ran.id, final=False)

    taking_over = MemoryOutput()
    done = await runner(req, log, taking_over, MemoryCheckpoints(), progress=checkpoint,
                        finals=finals).run()

    assert done.status is ReplayStatus.DONE
    assert done.invoked == 40  # every invocation counted once
    expected = {invocation_id(SOURCE, Event.from_dict(json.loads(v or b"")), f, "rp_1")
                for _, _, _, v in log for f in ("zip", "audit")}
    assert {i.id for i in dead.queued} | {i.id for i in taking_over.queued} == expected
    assert ran.id not in {i.id for i in taking_over.queued}
    window = {(p, o) for p, o, _, _ in log if checkpoint.next[p] <= o < checkpoint.planned[p]}
    rewritten = {r.invocation_id for r in taking_over.pending}
    assert not any(i.id in rewritten for i in taking_over.queued
                   if i.event_position is not None
                   and (i.event_position.partition, i.event_position.offset) in window)



async def test_a_lost_acknowledgement_sends_no_pending_result_after_its_invocation() -> None:
    log = records(12)
    out = MemoryOutput(unacknowledged=2)

    done = await runner(request(log), log, out, MemoryCheckpoints()).run()

    assert done.status is ReplayStatus.DONE
    queued: set[str] = set()
    for kind, ident in out.log:
        assert not (kind == "pending" and ident in queued), ident  # could hide its final
        if kind == "queued":
            queued.add(ident)
