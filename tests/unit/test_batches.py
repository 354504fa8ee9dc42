"""Batched subscriptions: settings, gathering, the batch invocation and each event's
outcome (``pipeline.batches``), with in-memory ports."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest

from pipeline.batches import outcomes
from pipeline.batches.assembly import ITEM_BYTES, Pending, invocation
from pipeline.batches.batcher import Batcher
from pipeline.batches.policy import Batching
from pipeline.deadletters import Origin, Reason
from pipeline.errors import InvalidRequest, PayloadTooLarge
from pipeline.execution import execute, failed, pending
from pipeline.ids import invocation_id
from pipeline.index.rows import Row
from pipeline.records import Event, Failure, Invocation, Position, Result, Status, dumps
from pipeline.specs import Subscription
from pipeline.starter import Starter

from .support import ROOM, MemoryRunner, event, function_spec, starter, subscription

TOPIC = "t.events.orders"


def batched(ident: str = "s1", function: str = "zip", size: int = 3,
            window_ms: int = 60_000) -> Subscription:
    return replace(subscription(ident, function), batching=Batching(size, window_ms))


def pending_event(n: int, partition: int = 0, data: bytes = b"{}") -> Pending:
    ev = event(data, "application/json", ident=f"ev-{n}")
    return Pending(ev, Origin(TOPIC, partition, n), dumps(ev.to_dict()))


# settings


@pytest.mark.parametrize(("record", "pointer"), [
    ({"batch_size": 0}, "batch_size: between 1 and 10000"),
    ({"batch_size": 10_001}, "batch_size: between 1 and 10000"),
    ({"batch_size": True}, "batch_size: a whole number"),
    ({"batch_size": 2.5}, "batch_size: a whole number"),
    ({"batch_window_ms": -1}, "batch_window_ms: between 0 and 300000"),
    ({"batch_window_ms": 300_001}, "batch_window_ms: between 0 and 300000"),
    ({"max_record_age_s": 0}, "max_record_age_s: between 1 and 604800, or null (no limit)"),
    ({"max_record_age_s": "1h"}, "max_record_age_s: a whole number"),
    ({"split_on_error": "yes"}, "split_on_error: true or false"),
    ({"ordered": 1}, "ordered: true or false"),
])
def test_batching_out_of_bounds_is_refused_naming_the_field(record: dict[str, object],
                                                            pointer: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        Batching.from_dict(record)
    assert refused.value.message == pointer


def test_a_subscription_keeps_its_batching_and_an_old_record_means_no_batching() -> None:
    sub = replace(batched(size=100, window_ms=50), batching=Batching(
        100, 50, max_record_age_s=3600, split_on_error=True, ordered=True))
    record = sub.to_dict()

    assert (record["batch_size"], record["batch_window_ms"], record["max_record_age_s"],
            record["split_on_error"], record["ordered"]) == (100, 50, 3600, True, True)
    assert Subscription.from_dict(record) == sub
    old = {k: v for k, v in record.items() if k in ("id", "function", "source", "created_at")}
    assert not Subscription.from_dict(old).batching.batched


@pytest.mark.parametrize("batching", [Batching(2), Batching(window_ms=5),
                                      Batching(max_record_age_s=60),
                                      Batching(split_on_error=True), Batching(ordered=True)])
def test_any_batching_setting_makes_a_subscription_batched(batching: Batching) -> None:
    assert batching.batched
    assert not Batching().batched


# gathering


async def test_a_batch_is_flushed_when_full_in_offset_order() -> None:
    flushed: list[list[int]] = []

    async def flush(sub: Subscription, source: str, batch: list[Pending]) -> None:
        flushed.append([p.origin.offset for p in invocation_order(batch)])

    batcher = Batcher(flush, ROOM)
    sub = batched(size=3)
    await asyncio.gather(*(batcher.add(sub, "orders", pending_event(n)) for n in (5, 3, 4)))

    assert flushed == [[3, 4, 5]]


def invocation_order(batch: list[Pending]) -> list[Pending]:
    made = invocation("zip", "orders", batch)
    by_id = {p.event.id: p for p in batch}
    return [by_id[item.event_id] for item in made.items]


async def test_a_batch_that_is_not_full_is_flushed_when_its_window_elapses() -> None:
    flushed: list[int] = []

    async def flush(sub: Subscription, source: str, batch: list[Pending]) -> None:
        flushed.append(len(batch))

    batcher = Batcher(flush, ROOM)
    async with asyncio.timeout(5):
        await asyncio.gather(*(batcher.add(batched(size=100, window_ms=20), "orders",
                                           pending_event(n)) for n in range(7)))

    assert flushed == [7]


async def test_partitions_and_subscriptions_are_batched_apart() -> None:
    flushed: list[tuple[str, int, int]] = []

    async def flush(sub: Subscription, source: str, batch: list[Pending]) -> None:
        flushed.append((sub.id, batch[0].origin.partition, len(batch)))

    batcher = Batcher(flush, ROOM)
    a, b = batched("a", size=2), batched("b", "audit", size=2)
    await asyncio.gather(*(batcher.add(sub, "orders", pending_event(n, partition))
                           for sub in (a, b) for partition in (0, 1) for n in (1, 2)))

    assert sorted(flushed) == [("a", 0, 2), ("a", 1, 2), ("b", 0, 2), ("b", 1, 2)]


async def test_an_event_that_would_overflow_the_room_starts_the_next_batch() -> None:
    flushed: list[int] = []

    async def flush(sub: Subscription, source: str, batch: list[Pending]) -> None:
        flushed.append(len(batch))

    events = [pending_event(n, data=b'"' + b"x" * 1000 + b'"') for n in range(5)]
    batcher = Batcher(flush, 2 * events[0].size + ITEM_BYTES)
    async with asyncio.timeout(5):
        await asyncio.gather(*(batcher.add(batched(size=100, window_ms=10), "orders", p)
                               for p in events))

    assert flushed == [2, 2, 1]


async def test_an_event_cancelled_while_its_batch_is_open_leaves_it() -> None:
    flushed: list[list[str]] = []

    async def flush(sub: Subscription, source: str, batch: list[Pending]) -> None:
        flushed.append([p.event.id for p in batch])

    batcher = Batcher(flush, ROOM)
    sub = batched(size=3)
    first = asyncio.create_task(batcher.add(sub, "orders", pending_event(1)))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    await asyncio.gather(*(batcher.add(sub, "orders", pending_event(n)) for n in (2, 3, 4)))

    assert flushed == [["ev-2", "ev-3", "ev-4"]]


async def test_a_failed_flush_fails_every_event_of_the_batch() -> None:
    async def flush(sub: Subscription, source: str, batch: list[Pending]) -> None:
        raise RuntimeError("boom")

    batcher = Batcher(flush, ROOM)
    answers = await asyncio.gather(*(batcher.add(batched(size=2), "orders", pending_event(n))
                                     for n in (1, 2)), return_exceptions=True)

    assert [type(a) for a in answers] == [RuntimeError, RuntimeError]


# the batch invocation


def test_the_batch_invocation_carries_the_events_as_a_json_list_and_names_each() -> None:
    batch = [pending_event(n, data=b'{"n": %d}' % n) for n in (2, 1)]

    made = invocation("zip", "orders", batch)

    assert made.event.datacontenttype == "application/json"
    assert [e["id"] for e in json.loads(made.event.data)] == ["ev-1", "ev-2"]
    assert json.loads(made.event.data)[0]["data"] == {"n": 1}
    assert [i.invocation_id for i in made.items] == [
        invocation_id("orders", p.event, "zip") for p in reversed(batch)]
    assert [i.event_position for i in made.items] == [Position(0, 1), Position(0, 2)]
    assert Invocation.from_dict(json.loads(dumps(made.to_dict()))) == made


def test_the_same_events_make_the_same_batch_and_other_boundaries_another() -> None:
    one, two, three = (pending_event(n) for n in (1, 2, 3))

    assert invocation("zip", "orders", [one, two]).id == invocation("zip", "orders",
                                                                    [two, one]).id
    assert invocation("zip", "orders", [one, two]).id != invocation("zip", "orders",
                                                                    [one, two, three]).id
    assert invocation("zip", "orders", [one]).id != invocation_id("orders", one.event, "zip")


# each event's outcome


async def test_a_run_of_a_batch_gives_the_list_to_the_function_and_settles_every_event() -> None:
    made = invocation("zip", "orders", [pending_event(n) for n in (1, 2)])
    runner = MemoryRunner()

    result = await execute(made, function_spec("zip"), runner)

    assert json.loads(runner.requests[0].payload)[1]["id"] == "ev-2"
    assert [i.status for i in result.items] == [Status.SUCCEEDED, Status.SUCCEEDED]
    assert Result.from_dict(json.loads(dumps(result.to_dict()))) == result


async def test_a_failed_batch_fails_every_event_with_the_batch_error() -> None:
    made = invocation("zip", "orders", [pending_event(n) for n in (1, 2)])

    result = await execute(made, function_spec("zip"), MemoryRunner(exit_code=3))
    views = outcomes.each(result)

    assert [v.status for v in views] == [Status.FAILED, Status.FAILED]
    assert views[0].error == "exited with code 3"
    assert views[0].batch_id == made.id


def test_an_event_of_a_batch_not_yet_final_shows_the_batch_state() -> None:
    made = invocation("zip", "orders", [pending_event(1)])
    running = replace(pending(made), status=Status.RUNNING)

    (view,) = outcomes.each(running)

    assert (view.status, view.invocation_id, view.event_id) == (
        Status.RUNNING, made.items[0].invocation_id, "ev-1")
    assert outcomes.seen_as(running, made.items[0].invocation_id) == view
    assert outcomes.seen_as(running, made.id) is running


def test_the_index_makes_a_row_of_the_batch_and_of_each_event() -> None:
    made = invocation("zip", "orders", [pending_event(n) for n in (1, 2)])
    result = failed(made, "the function is gone", Failure.START)

    rows = Row.each_of(result, Position(3, 9))

    assert [(r.invocation_id, r.event_id, r.status) for r in rows] == [
        (made.id, made.id, "failed"),
        (made.items[0].invocation_id, "ev-1", "failed"),
        (made.items[1].invocation_id, "ev-2", "failed")]
    assert rows[1].event_position == Position(0, 1)
    assert {r.position for r in rows} == {Position(3, 9)}
    assert rows[2].error == "the function is gone"


# the starter




def origin(n: int) -> Origin:
    return Origin(TOPIC, 0, n)


async def start_all(s: Starter, events: list[Event]) -> list[int]:
    return list(await asyncio.gather(*(s.start(ev, "orders", origin(n))
                                       for n, ev in enumerate(events))))


async def test_the_starter_queues_one_invocation_per_batch_beside_unbatched_ones() -> None:
    s, log, _ = starter(batched(size=3), subscription("s2", "audit"))
    events = [event(b"x", ident=f"ev-{n}") for n in range(3)]

    assert await start_all(s, events) == [2, 2, 2]

    (batch,) = [i for i in log.queued if i.function == "zip"]
    assert [i.event_id for i in batch.items] == ["ev-0", "ev-1", "ev-2"]
    assert sorted(i.function for i in log.queued) == ["audit"] * 3 + ["zip"]
    (noted,) = [r for r in log.results if r.function == "zip"]
    assert noted.status is Status.PENDING
    assert len(noted.items) == 3


async def test_a_batch_gathered_again_after_a_crash_is_not_queued_twice() -> None:
    s, log, finals = starter(batched(size=2))
    events = [event(b"x", ident=f"ev-{n}") for n in range(2)]
    await start_all(s, events)
    finals.add(log.queued[0].id, False)  # it started running

    await start_all(s, events)

    assert len(log.queued) == 1


async def test_a_batch_too_large_to_queue_dead_letters_each_event_and_fails_the_batch() -> None:
    s, log, _ = starter(batched(size=2))
    log.failures = [PayloadTooLarge("over the broker's limit")]

    await start_all(s, [event(b"x", ident=f"ev-{n}") for n in range(2)])

    assert not log.queued
    assert sorted(letter.key for letter in log.letters) == [f"{TOPIC}/0/0", f"{TOPIC}/0/1"]
    assert {letter.reason for letter in log.letters} == {Reason.TOO_LARGE}
    (final,) = log.finals()
    assert [i.status for i in final.items] == [Status.FAILED, Status.FAILED]
    assert "too large" in (final.error or "")


def test_an_event_that_came_twice_is_in_its_batch_once_at_its_first_place() -> None:
    one, two = pending_event(1), pending_event(2)
    again = Pending(one.event, Origin(TOPIC, 0, 3), one.record)

    made = invocation("zip", "orders", [again, two, one])

    assert [i.event_id for i in made.items] == ["ev-1", "ev-2"]
    assert made.items[0].event_position == Position(0, 1)
    assert len(json.loads(made.event.data)) == 2
