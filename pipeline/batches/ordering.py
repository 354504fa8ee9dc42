"""Per-key order for the executor: invocations that share a key run one at a time, in the
order they arrived; the others run as concurrently as before.

    turns = KeyedTurns()
    turn = turns.reserve(keys)   # at arrival, before any await: arrival order is the order
    await turn.ready()           # every earlier turn holding one of its keys is released
    ...run...
    turn.release()               # whatever happened (a done callback of the run's task)

An ordered subscription's invocation is keyed by its events' subjects (``keys``); events
without a subject, and unordered invocations, hold no key and never wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from pipeline.records import Invocation


def keys(invocation: Invocation) -> set[str]:
    """The keys an invocation holds: its function's subjects, when it is ordered."""
    if not invocation.ordered:
        return set()
    return {f"{invocation.function}\x00{i.subject}" for i in invocation.items
            if i.subject is not None}


class Turn:
    def __init__(self, turns: KeyedTurns, keys: set[str],
                 before: list[asyncio.Future[None]]) -> None:
        self._turns = turns
        self._keys = keys
        self._before = before
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def ready(self) -> None:
        if self._before:
            await asyncio.wait(self._before)

    def release(self) -> None:
        """Idempotent."""
        if not self.done.done():
            self.done.set_result(None)
            self._turns.forget(self._keys, self.done)


class KeyedTurns:
    def __init__(self) -> None:
        self._last: dict[str, asyncio.Future[None]] = {}  # each key's latest turn

    def reserve(self, held: Iterable[str]) -> Turn:
        """The next turn of every key in ``held`` (none: a turn that never waits)."""
        held = set(held)
        before = list({id(f): f for f in (self._last[k] for k in held if k in self._last)
                       }.values())
        turn = Turn(self, held, before)
        for key in held:
            self._last[key] = turn.done
        return turn

    def forget(self, held: Iterable[str], done: asyncio.Future[None]) -> None:
        """A finished turn: keys whose latest turn it was are free (memory stays bounded
        by the keys in flight)."""
        for key in held:
            if self._last.get(key) is done:
                del self._last[key]

    def __len__(self) -> int:
        return len(self._last)
