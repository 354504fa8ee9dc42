"""Group commit: the writes concurrent callers ask for, made as one.

Every caller of ``GroupWrite.write`` waits for the acknowledgement of its own records, as
if it wrote them alone; meanwhile the records of every caller that came while the
previous group was on its way go out together, in one ``write_many`` call (one produce
request, one wait for the acknowledgement, instead of one each). Under light load a group
is a single caller, who waits for nothing but its own write; under heavy load groups
grow, and so does the throughput, with no timer and no added latency.

One record too large fails only its own caller: a group that ``PayloadTooLarge`` refuses
is written again caller by caller. Any other failure (the broker unavailable) is each
caller's to retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from pipeline.errors import PayloadTooLarge

T = TypeVar("T")


class GroupWrite(Generic[T]):
    def __init__(self, write_many: Callable[[Sequence[T]], Awaitable[None]]) -> None:
        self._write_many = write_many
        self._waiting: list[tuple[Sequence[T], asyncio.Future[None]]] = []
        self._writing: asyncio.Task[None] | None = None

    async def write(self, records: Sequence[T]) -> None:
        """Return once ``records`` are written (acknowledged), or raise why not."""
        if not records:
            return
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((records, done))
        if self._writing is None:
            self._writing = asyncio.create_task(self._drain())
        await asyncio.shield(done)  # a caller that gives up does not fail the others

    async def _drain(self) -> None:
        group: list[tuple[Sequence[T], asyncio.Future[None]]] = []
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                await self._write(group)
        except BaseException:  # cancelled (the worker stops): so are its callers' writes
            for _, done in group + self._waiting:
                done.cancel()
            self._waiting = []
            raise
        finally:
            self._writing = None

    async def _write(self, group: list[tuple[Sequence[T], asyncio.Future[None]]]) -> None:
        try:
            await self._write_many([record for records, _ in group for record in records])
        except PayloadTooLarge as exc:
            if len(group) == 1:
                _settle(group[0][1], exc)
                return
            for records, done in group:  # find whose it is
                try:
                    await self._write_many(records)
                except Exception as one:
                    _settle(done, one)
                else:
                    _settle(done, None)
        except Exception as exc:  # every caller retries, or reports, on its own
            for _, done in group:
                _settle(done, exc)
        else:
            for _, done in group:
                _settle(done, None)


def _settle(done: asyncio.Future[None], exc: BaseException | None) -> None:
    if done.done():
        return
    if exc is None:
        done.set_result(None)
    else:
        done.set_exception(exc)
