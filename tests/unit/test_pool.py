"""The warm pool's policy, with in-memory instances."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.runtime import pool as pool_module
from pipeline.runtime.pool import Capacity, FunctionPool, PoolRetired


class Box:
    """An in-memory instance: healthy until told otherwise, and counts its destruction."""

    started = 0

    def __init__(self) -> None:
        Box.started += 1
        self.number = Box.started
        self.alive = True
        self.destroyed = False

    async def healthy(self) -> bool:
        return self.alive

    async def destroy(self) -> None:
        self.destroyed = True


async def start_box() -> Box:
    await asyncio.sleep(0)
    return Box()


def make_pool(capacity: Capacity | None = None, **options: object) -> FunctionPool[Box]:
    settings = {"max_size": 2, "min_warm": 0, "idle_timeout_s": 300.0, **options}
    return FunctionPool("f", start_box, capacity or Capacity(100), **settings)  # type: ignore[arg-type]


async def test_an_idle_instance_is_reused_and_reported_warm() -> None:
    pool = make_pool()
    first, cold = await pool.acquire()
    assert cold
    await pool.release(first, healthy=True)

    second, cold = await pool.acquire()

    assert second is first
    assert not cold


async def test_the_call_past_the_bound_waits_for_a_release() -> None:
    pool = make_pool(max_size=1)
    held, _ = await pool.acquire()
    waiter = asyncio.ensure_future(pool.acquire())
    await asyncio.sleep(0.01)
    assert not waiter.done()

    await pool.release(held, healthy=True)
    got, cold = await asyncio.wait_for(waiter, 1)

    assert got is held
    assert not cold
    assert pool.size == 1


async def test_an_unhealthy_release_destroys_and_the_next_call_starts_fresh() -> None:
    pool = make_pool(max_size=1)
    broken, _ = await pool.acquire()
    await pool.release(broken, healthy=False)

    fresh, cold = await pool.acquire()

    assert broken.destroyed
    assert fresh is not broken
    assert cold


async def test_prewarm_starts_min_warm_instances() -> None:
    pool = make_pool(max_size=4, min_warm=3)
    await pool.prewarm()
    assert (pool.size, pool.idle) == (3, 3)
    _, cold = await pool.acquire()
    assert not cold


async def test_min_warm_never_exceeds_the_bound() -> None:
    pool = make_pool(max_size=2, min_warm=5)
    await pool.prewarm()
    assert pool.size == 2


async def test_maintain_reaps_idle_past_the_timeout_but_keeps_min_warm() -> None:
    pool = make_pool(max_size=3, min_warm=1, idle_timeout_s=0.0)
    boxes = [(await pool.acquire())[0] for _ in range(3)]
    for box in boxes:
        await pool.release(box, healthy=True)
    await asyncio.sleep(0.01)

    await pool.maintain()

    assert pool.size == 1
    assert sum(b.destroyed for b in boxes) == 2


async def test_maintain_replaces_an_idle_instance_that_died(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pool = make_pool(max_size=2, min_warm=1)
    await pool.prewarm()
    (box, _) = await pool.acquire()
    await pool.release(box, healthy=True)
    box.alive = False
    monkeypatch.setattr(pool_module, "HEALTHY_FOR_S", 0.0)  # its last call is long ago

    await pool.maintain()

    replacement, cold = await pool.acquire()
    assert box.destroyed
    assert replacement is not box
    assert not cold  # prewarmed back by maintain


async def test_drain_destroys_idle_now_and_busy_on_release() -> None:
    pool = make_pool(max_size=2)
    idle, _ = await pool.acquire()
    busy, _ = await pool.acquire()
    await pool.release(idle, healthy=True)

    await pool.drain()

    assert idle.destroyed
    assert not busy.destroyed
    await pool.release(busy, healthy=True)
    assert busy.destroyed
    assert pool.size == 0


async def test_drain_sends_waiters_to_the_new_pool() -> None:
    pool = make_pool(max_size=1)
    held, _ = await pool.acquire()
    waiter = asyncio.ensure_future(pool.acquire())
    await asyncio.sleep(0.01)

    await pool.drain()

    with pytest.raises(PoolRetired):
        await waiter
    await pool.release(held, healthy=True)


async def test_an_instance_started_for_prewarm_after_a_drain_is_destroyed() -> None:
    """A redeploy while a prewarm start is under way must not leave that container behind."""
    gate = asyncio.Event()
    started: list[Box] = []

    async def slow_start() -> Box:
        await gate.wait()
        started.append(Box())
        return started[-1]

    capacity = Capacity(10)
    pool: FunctionPool[Box] = FunctionPool("f", slow_start, capacity, max_size=2, min_warm=1)
    prewarming = asyncio.ensure_future(pool.prewarm())
    await asyncio.sleep(0.01)

    await pool.drain()
    gate.set()
    await asyncio.wait_for(prewarming, 1)

    assert [box.destroyed for box in started] == [True]
    assert (pool.size, pool.idle, capacity.used) == (0, 0, 0)


async def test_the_capacity_is_shared_across_pools() -> None:
    capacity = Capacity(1)
    one, other = make_pool(capacity), make_pool(capacity)
    held, _ = await one.acquire()
    waiter = asyncio.ensure_future(other.acquire())
    await asyncio.sleep(0.01)
    assert not waiter.done()

    await one.release(held, healthy=False)  # destroyed: its capacity goes back

    _, cold = await asyncio.wait_for(waiter, 1)
    assert cold
    assert capacity.used == 1


async def test_a_failed_start_gives_its_place_back() -> None:
    async def failing() -> Box:
        raise RuntimeError("no")

    capacity = Capacity(1)
    pool: FunctionPool[Box] = FunctionPool("f", failing, capacity, max_size=1)
    with pytest.raises(RuntimeError):
        await pool.acquire()
    assert (pool.size, capacity.used) == (0, 0)


async def test_an_instance_that_just_answered_a_call_is_not_health_checked() -> None:
    """Under load every instance is busy: its calls prove it healthy, and a health check
    per instance and second would cost the calls' own time."""
    pool = make_pool(max_size=1)
    (box, _) = await pool.acquire()
    await pool.release(box, healthy=True)
    box.alive = False  # would be found out by a health check

    await pool.maintain()

    assert not box.destroyed


async def test_at_the_cap_another_pools_longest_idle_instance_makes_room() -> None:
    capacity = Capacity(2)
    busy, idle = make_pool(capacity), make_pool(capacity)
    older, _ = await idle.acquire()
    newer, _ = await busy.acquire()
    await idle.release(older, healthy=True)
    await busy.release(newer, healthy=True)
    needy = make_pool(capacity)

    _, cold = await asyncio.wait_for(needy.acquire(), 1)

    assert cold
    assert (older.destroyed, newer.destroyed) == (True, False)
    assert (capacity.used, idle.size, busy.size, needy.size) == (2, 0, 1, 1)


async def test_instances_kept_warm_by_min_warm_are_not_taken() -> None:
    capacity = Capacity(1)
    kept = make_pool(capacity, min_warm=1)
    await kept.prewarm()
    needy = make_pool(capacity)

    waiter = asyncio.ensure_future(needy.acquire())
    await asyncio.sleep(0.01)

    assert not waiter.done()
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert (capacity.used, kept.idle) == (1, 1)


async def test_a_pool_waiting_at_the_cap_takes_an_instance_as_soon_as_it_goes_idle() -> None:
    capacity = Capacity(1)
    other = make_pool(capacity)
    held, _ = await other.acquire()
    needy = make_pool(capacity)
    waiter = asyncio.ensure_future(needy.acquire())
    await asyncio.sleep(0.01)
    assert not waiter.done()

    await other.release(held, healthy=True)  # idle, not destroyed: no place given back

    _, cold = await asyncio.wait_for(waiter, 1)
    assert cold
    assert held.destroyed
    assert (capacity.used, other.size) == (1, 0)


async def test_an_evicted_instance_the_engine_fails_to_remove_does_not_fail_the_start() -> None:
    class Stuck(Box):
        async def destroy(self) -> None:
            raise RuntimeError("the engine did not answer")

    async def start_stuck() -> Box:
        return Stuck()

    capacity = Capacity(1)
    other: FunctionPool[Box] = FunctionPool("other", start_stuck, capacity, max_size=1)
    held, _ = await other.acquire()
    await other.release(held, healthy=True)
    needy = make_pool(capacity)

    box, cold = await asyncio.wait_for(needy.acquire(), 1)

    assert cold
    assert not isinstance(box, Stuck)
    assert (capacity.used, other.size, needy.size) == (1, 0, 1)
