"""Builders for records, and in-memory ``Runner``, ``ResultLog`` and ``Queue`` (real
implementations of the ports)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from pipeline.deadletters import DeadLetter
from pipeline.filters import parse
from pipeline.finals import RecentFinals
from pipeline.records import Event, Invocation, Result, Status, strict_loads
from pipeline.registry import Record, Registry, encode, record_key
from pipeline.runtime.base import RunOutcome, RunRequest
from pipeline.specs import FunctionSpec, Subscription, Webhook
from pipeline.starter import Starter

STARTED_AT = "2025-01-01T00:00:00.000000Z"
FINISHED_AT = "2025-01-01T00:00:00.250000Z"


def function_spec(name: str = "echo", **changes: Any) -> FunctionSpec:
    spec = FunctionSpec(name=name, image=f"local/{name}:latest", image_digest=f"sha256:{name}",
                        created_at="2025-01-01T00:00:00Z", updated_at="2025-01-01T00:00:00Z")
    return replace(spec, **changes)


def event(
    data: bytes = b"", content_type: str | None = None, *, ident: str = "ev-1",
    source: str = "orders",
) -> Event:
    return Event(id=ident, source=source, type="order.created", data=data,
                 datacontenttype=content_type, time="2025-01-01T00:00:00Z")


def subscription(ident: str, function: str, source: str = "orders",
                 event_filter: dict[str, Any] | None = None) -> Subscription:
    return Subscription(id=ident, function=function, source=source,
                        created_at="2025-01-01T00:00:00Z",
                        filter=parse(event_filter) if event_filter is not None else None)


def webhook(ident: str, source: str = "orders") -> Webhook:
    return Webhook(id=ident, name=f"hook {ident}", source=source,
                   created_at="2025-01-01T00:00:00Z")


class MemoryRunner:
    """Runs a "function" in memory: answers ``b"echo:" + payload`` and records each request.

    ``exit_code`` other than 0 makes every run a failure, as a real container would.
    """

    def __init__(self, exit_code: int = 0) -> None:
        self.exit_code = exit_code
        self.requests: list[RunRequest] = []
        self.closed = False

    async def resolve_image(self, image: str) -> str:
        return f"sha256:{image}"

    async def run(self, request: RunRequest) -> RunOutcome:
        self.requests.append(request)
        ok = self.exit_code == 0
        return RunOutcome(
            status=Status.SUCCEEDED if ok else Status.FAILED,
            output=b"echo:" + request.payload,
            logs=f"ran {request.function.name}\n",
            started_at=STARTED_AT,
            finished_at=FINISHED_AT,
            duration_s=0.25,
            exit_code=self.exit_code,
            error=None if ok else f"exited with code {self.exit_code}",
            cold_start=False,
        )

    async def close(self) -> None:
        self.closed = True


class MemoryLog:
    """The ``ResultLog`` and ``Queue`` ports in memory; ``failures`` makes the next writes
    fail."""

    def __init__(self, finals: RecentFinals | None = None) -> None:
        self.results: list[Result] = []
        self.letters: list[DeadLetter] = []
        self.queued: list[Invocation] = []
        self.failures: list[Exception] = []
        self._finals = finals

    async def write(self, result: Result) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.results.append(result)
        if self._finals is not None and result.status.final:
            self._finals.add(result.invocation_id, True, result.redrive)

    def note(self, result: Result) -> None:
        self.results.append(result)

    async def dead_letter(self, letter: DeadLetter) -> None:
        self.letters.append(letter)

    async def write_pending(self, records: Sequence[tuple[str, bytes]]) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.results.extend(Result.from_dict(strict_loads(value)) for _, value in records)

    async def enqueue_many(self, records: Sequence[tuple[str, bytes]]) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.queued.extend(Invocation.from_dict(strict_loads(value)) for _, value in records)

    def finals(self) -> list[Result]:
        return [r for r in self.results if r.status.final]


class Clock:
    """A clock the test moves by hand: ``clock.now += 61``."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


ROOM = 1024 * 1024  # the bytes a batch may hold in the starters the tests make


def starter(*records: Record, log: Callable[[RecentFinals], MemoryLog] = MemoryLog
            ) -> tuple[Starter, MemoryLog, RecentFinals]:
    """A starter whose registry holds ``records``, writing to an in-memory log."""
    registry = Registry()
    for record in records:
        registry.apply(record_key(record).encode(), encode(record))
    finals = RecentFinals(600)
    made = log(finals)
    return Starter(registry, made, made, finals, ROOM), made, finals
