"""Per-key order in the executor (``pipeline.batches.ordering``)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from pipeline.batches.assembly import Pending, invocation
from pipeline.batches.ordering import KeyedTurns, keys
from pipeline.batches.policy import Batching
from pipeline.deadletters import Origin
from pipeline.records import Event, Invocation, dumps

from .support import event, function_spec
from .test_executor import ScriptedRunner, Setup, ok


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_turn_waits_for_the_earlier_turns_of_its_key_only() -> None:
    turns = KeyedTurns()
    first, other, second = turns.reserve({"a"}), turns.reserve({"b"}), turns.reserve({"a"})
    entered: list[str] = []

    async def enter(name: str, turn: object) -> None:
        await turn.ready()  # type: ignore[attr-defined]
        entered.append(name)

    tasks = [asyncio.create_task(enter(n, t))
             for n, t in (("second", second), ("other", other), ("first", first))]
    await settle()
    assert entered == ["other", "first"]

    first.release()
    await settle()
    assert entered == ["other", "first", "second"]
    await asyncio.gather(*tasks)


async def test_a_turn_of_several_keys_waits_for_each_and_released_turns_are_forgotten() -> None:
    turns = KeyedTurns()
    a, b = turns.reserve({"a"}), turns.reserve({"b"})
    both = turns.reserve({"a", "b"})
    waiting = asyncio.create_task(both.ready())

    a.release()
    await settle()
    assert not waiting.done()
    b.release()
    b.release()  # twice: harmless
    await asyncio.wait_for(waiting, 1)
    both.release()
    assert len(turns) == 0


async def test_a_turn_without_keys_never_waits() -> None:
    turns = KeyedTurns()
    turns.reserve({"a"})

    await asyncio.wait_for(turns.reserve(set()).ready(), 1)


def ordered_batch(subjects: list[str | None], ordered: bool = True) -> Invocation:
    pending = []
    for n, subject in enumerate(subjects):
        ev: Event = replace(event(b"x", ident=f"ev-{n}"), subject=subject)
        pending.append(Pending(ev, Origin("t.events.orders", 0, n), dumps(ev.to_dict())))
    return invocation("echo", "orders", pending, Batching(ordered=ordered))


def test_an_ordered_invocation_is_keyed_by_its_function_and_subjects() -> None:
    assert keys(ordered_batch(["a", None, "b", "a"])) == {"echo\x00a", "echo\x00b"}
    assert keys(ordered_batch([None])) == set()
    assert keys(ordered_batch(["a"], ordered=False)) == set()


async def test_the_executor_runs_invocations_sharing_a_subject_one_at_a_time() -> None:
    s = Setup(ScriptedRunner(echo=[ok]), function_spec("echo", max_concurrency=8))
    s.runner.gate["echo"] = asyncio.Event()
    first, second = ordered_batch(["k"]), replace(ordered_batch(["k", "z"]), id="second")
    elsewhere = replace(ordered_batch(["other"]), id="elsewhere")

    runs = [asyncio.create_task(s.executor.handle(i)) for i in (first, second, elsewhere)]
    await settle()
    assert len(s.runner.calls) == 2  # first and elsewhere; second waits for first

    s.runner.gate["echo"].set()
    await asyncio.wait_for(asyncio.gather(*runs), 5)
    assert len(s.runner.calls) == 3


async def test_a_cancelled_run_lets_the_next_of_its_key_go() -> None:
    s = Setup(ScriptedRunner(echo=[ok]), function_spec("echo", max_concurrency=8))
    s.runner.gate["echo"] = asyncio.Event()
    first, second = ordered_batch(["k"]), replace(ordered_batch(["k"]), id="second")
    blocked = asyncio.create_task(s.executor.handle(first))
    waiting = asyncio.create_task(s.executor.handle(second))
    await settle()

    blocked.cancel()
    await asyncio.gather(blocked, return_exceptions=True)
    await settle()

    assert len(s.runner.calls) == 2
    s.runner.gate["echo"].set()
    await asyncio.wait_for(waiting, 5)
