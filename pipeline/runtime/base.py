"""The runtime port: what the executor needs from anything that runs a function."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from pipeline.records import Failure, Status
from pipeline.specs import FunctionSpec


@dataclass(frozen=True, slots=True)
class RunRequest:
    function: FunctionSpec
    invocation_id: str
    payload: bytes
    env: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What one run produced; ``status`` is final (succeeded, failed or timeout), and
    ``failure`` says why it did not succeed (what a retry policy looks at)."""

    status: Status
    output: bytes
    logs: str
    started_at: str
    finished_at: str
    duration_s: float
    exit_code: int | None = None
    error: str | None = None
    cold_start: bool = True
    init_s: float | None = None
    failure: Failure | None = None


class Runner(Protocol):
    async def resolve_image(self, image: str) -> str:
        """The content digest of a local image; ``InvalidRequest`` when it is not there."""
        ...

    async def image_env(self, image: str) -> dict[str, str]:
        """The environment variables a local image sets; ``InvalidRequest`` when it is not
        there."""
        ...

    async def run(self, request: RunRequest) -> RunOutcome:
        """Run once. A function's own failure is an outcome; ``RetryableError`` means the
        runtime itself could not be reached and the same request may be tried again."""
        ...

    async def close(self) -> None: ...


def capped(data: bytes, limit: int) -> tuple[bytes, bool]:
    """``data`` cut to ``limit`` bytes, and whether it was cut."""
    return (data[:limit], True) if len(data) > limit else (data, False)
