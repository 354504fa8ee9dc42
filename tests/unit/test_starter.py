from __future__ import annotations

from collections.abc import Sequence

from pipeline.deadletters import Origin, Reason
from pipeline.errors import BrokerUnavailable, PayloadTooLarge
from pipeline.finals import RecentFinals
from pipeline.ids import invocation_id
from pipeline.records import Result, Status

from .support import MemoryLog, event, starter, subscription

ORIGIN = Origin("t.events.orders", 2, 41)


async def test_each_subscribed_function_gets_a_pending_result_and_a_queued_invocation() -> None:
    s, log, _ = starter(subscription("s1", "zip"), subscription("s2", "audit"))

    assert await s.start(event(b"x"), "orders", ORIGIN) == 2

    assert sorted(i.function for i in log.queued) == ["audit", "zip"]
    assert {r.status for r in log.results} == {Status.PENDING}


async def test_a_redelivered_event_does_not_queue_what_already_started() -> None:
    s, log, finals = starter(subscription("s1", "zip"), subscription("s2", "audit"))
    ev = event(b"x")
    finals.add(invocation_id("orders", ev, "zip"), True)

    assert await s.start(ev, "orders", ORIGIN) == 1

    assert [i.function for i in log.queued] == ["audit"]
    assert all(r.function == "audit" for r in log.results)


async def test_writes_wait_out_a_broker_that_is_down() -> None:
    s, log, _ = starter(subscription("s1", "zip"))
    log.failures = [BrokerUnavailable("down")]

    assert await s.start(event(b"x"), "orders", ORIGIN) == 1

    # queued once or twice (the retry may repeat a write that landed): one invocation id
    assert len({i.id for i in log.queued}) == 1


async def test_an_event_too_large_to_queue_is_dead_lettered_and_its_invocations_fail() -> None:
    s, log, _ = starter(subscription("s1", "zip"))
    log.failures = [PayloadTooLarge("the record is larger than the broker accepts")]

    assert await s.start(event(b"x"), "orders", ORIGIN) == 0

    [letter] = log.letters
    assert (letter.reason, letter.key, letter.origin) == (Reason.TOO_LARGE, ORIGIN.key, ORIGIN)
    [final] = log.finals()
    assert final.status is Status.FAILED
    assert "too large to queue" in (final.error or "")


class LostAcknowledgement(MemoryLog):
    """The first invocation written lands, but its acknowledgement is lost."""

    def __init__(self, finals: RecentFinals) -> None:
        super().__init__(finals)
        self.order: list[str] = []
        self.lost = False

    async def write(self, result: Result) -> None:
        await super().write(result)
        self.order.append(f"result:{result.status}")

    async def write_pending(self, records: Sequence[tuple[str, bytes]]) -> None:
        await super().write_pending(records)
        self.order += [f"result:{r.status}" for r in self.results[-len(records):]]

    async def enqueue_many(self, records: Sequence[tuple[str, bytes]]) -> None:
        await super().enqueue_many(records)
        self.order.append("queued")
        if not self.lost:
            self.lost = True
            raise BrokerUnavailable("the acknowledgement was lost")


async def test_no_pending_result_is_written_after_its_invocation_was_queued() -> None:
    """Once queued, an invocation may run and end at once: a pending Result written again by
    a retry of both writes could land after its final one, and stay there."""
    s, log, _ = starter(subscription("s1", "zip"), log=LostAcknowledgement)

    assert await s.start(event(b"x"), "orders", ORIGIN) == 1

    first_queued = log.order.index("queued")
    assert "result:pending" not in log.order[first_queued:], log.order
