"""Group commit: concurrent callers share writes; each learns of its own failure."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from pipeline.errors import BrokerUnavailable, PayloadTooLarge
from pipeline.grouped import GroupWrite


class Log:
    def __init__(self) -> None:
        self.writes: list[list[str]] = []
        self.fail: Exception | None = None

    async def write_many(self, records: Sequence[str]) -> None:
        await asyncio.sleep(0.01)
        if self.fail is not None:
            raise self.fail
        if any(r.startswith("huge") for r in records):
            raise PayloadTooLarge("a record is too large")
        self.writes.append(list(records))


async def test_callers_that_come_while_a_write_is_on_its_way_go_out_together() -> None:
    log = Log()
    group = GroupWrite(log.write_many)

    await asyncio.gather(*(group.write([f"r{n}"]) for n in range(20)))

    assert sorted(r for w in log.writes for r in w) == sorted(f"r{n}" for n in range(20))
    assert len(log.writes) <= 2  # the first caller alone, then everyone who came meanwhile


async def test_a_lone_caller_waits_only_for_its_own_write() -> None:
    log = Log()
    group = GroupWrite(log.write_many)
    await group.write(["a"])
    await group.write(["b"])
    assert log.writes == [["a"], ["b"]]


async def test_a_record_too_large_fails_only_its_caller() -> None:
    log = Log()
    group = GroupWrite(log.write_many)
    await group.write(["first"])  # so that the next three go out as one group

    results = await asyncio.gather(group.write(["a"]), group.write(["huge"]),
                                   group.write(["b"]), return_exceptions=True)

    assert results[0] is None
    assert results[2] is None
    assert isinstance(results[1], PayloadTooLarge)
    assert sorted(r for w in log.writes for r in w) == ["a", "b", "first"]


async def test_the_broker_unavailable_fails_every_caller_of_the_group() -> None:
    log = Log()
    log.fail = BrokerUnavailable("down")
    group = GroupWrite(log.write_many)

    results = await asyncio.gather(group.write(["a"]), group.write(["b"]),
                                   return_exceptions=True)

    assert all(isinstance(r, BrokerUnavailable) for r in results)
    log.fail = None
    await group.write(["a"])  # and the next write goes on
    assert log.writes == [["a"]]


async def test_a_caller_that_gives_up_does_not_fail_the_others() -> None:
    log = Log()
    group = GroupWrite(log.write_many)
    first = asyncio.create_task(group.write(["a"]))
    second = asyncio.create_task(group.write(["b"]))
    await asyncio.sleep(0)
    first.cancel()

    await second
    with pytest.raises(asyncio.CancelledError):
        await first
    assert sorted(r for w in log.writes for r in w) == ["a", "b"]
