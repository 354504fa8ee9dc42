from __future__ import annotations

import asyncio
import itertools

import pytest

from pipeline.admission import Admission, InflightBudget, RateLimit

from .support import Clock, function_spec


def test_a_rate_limit_allows_its_burst_then_spaces_calls() -> None:
    clock = Clock()
    limit = RateLimit(rate=2.0, burst=2.0, clock=clock)
    limit._tokens -= 2  # the burst was spent

    assert limit.delay() == pytest.approx(0.5)
    clock.now = 0.5
    assert limit.delay() == 0.0


async def test_a_rate_limited_function_starts_at_its_rate_after_its_burst() -> None:
    admission = Admission(max_running=8)
    spec = function_spec("f", rate_limit=5.0, max_concurrency=8)  # a burst of 5, then 5/s
    started: list[float] = []
    loop = asyncio.get_running_loop()

    async def call() -> None:
        async with admission.slot(spec):
            started.append(loop.time())

    await asyncio.gather(*(call() for _ in range(7)))

    gaps = [b - a for a, b in itertools.pairwise(started)]
    assert max(gaps[:4]) < 0.05
    assert gaps[4] == pytest.approx(0.2, abs=0.05)
    assert gaps[5] == pytest.approx(0.2, abs=0.05)


async def test_the_in_flight_budget_waits_when_full_and_takes_a_giant_alone() -> None:
    budget = InflightBudget(max_records=2, max_bytes=100)
    await budget.take(10)
    await budget.take(10)
    third = asyncio.create_task(budget.take(10))
    await asyncio.sleep(0.01)
    assert not third.done()
    assert budget.full

    budget.give_back(10)
    await asyncio.wait_for(third, 1)
    budget.give_back(10)
    budget.give_back(10)

    await asyncio.wait_for(budget.take(1000), 1)  # larger than the budget, but alone
    assert budget.bytes == 1000


async def test_the_budget_remembers_it_was_full_until_asked() -> None:
    """The watchdog asks every few seconds; a budget that filled up in between kept
    records waiting in Faust's buffers, and they must not be taken for skipped ones."""
    budget = InflightBudget(max_records=1, max_bytes=100)
    assert not budget.was_full()
    await budget.take(10)
    second = asyncio.create_task(budget.take(10))
    await asyncio.sleep(0.01)
    budget.give_back(10)
    await asyncio.wait_for(second, 1)
    budget.give_back(10)
    assert not budget.full
    assert budget.was_full()  # full in between
    assert not budget.was_full()  # once


async def test_changed_limits_take_effect_for_new_calls() -> None:
    admission = Admission(max_running=8)
    async with (admission.slot(function_spec("f", max_concurrency=1)),
                admission.slot(function_spec("f", max_concurrency=2))):
        assert admission.load()["f"]["running"] == 1
