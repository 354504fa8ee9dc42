"""The supervisor's state file: what it runs, as it knows it (it starts and reaps its
children), written atomically on every change for ``faasflow status`` and ``down`` to read.

Only the holder of the supervisor's lock writes it (see ``pipeline.cli.processes.Lock``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline.cli.processes import ProcessId
from pipeline.files import write_atomically


@dataclass(frozen=True, slots=True)
class Exit:
    reason: str  # "exit code 1", "SIGKILL", "unhealthy: <why>"
    at: float


@dataclass(frozen=True, slots=True)
class ComponentState:
    """One child. ``state``: starting (not ready yet), running, restarting (waiting out its
    backoff), stopped."""

    state: str = "stopped"
    pid: int | None = None
    pid_started: int | None = None  # with pid, a ProcessId: tells a reused pid apart
    started_at: float | None = None
    ready_at: float | None = None
    restarts: int = 0
    last_exit: Exit | None = None
    restart_at: float | None = None  # when a restarting child is started again
    probe: str | None = None  # the supervisor's last look at it, in words

    @property
    def process(self) -> ProcessId | None:
        if self.pid is None or self.pid_started is None:
            return None
        return ProcessId(self.pid, self.pid_started)


@dataclass(frozen=True, slots=True)
class SupervisorState:
    """``state``: starting (bringing its children up), running, stopping, stopped, failed
    (could not start them; ``error`` says why)."""

    pid: int
    pid_started: int
    started_at: float
    state: str = "starting"
    error: str | None = None
    components: dict[str, ComponentState] = field(default_factory=dict)


def write(path: Path, state: SupervisorState) -> None:
    write_atomically(path, json.dumps(asdict(state), indent=1))


def read(path: Path) -> SupervisorState | None:
    """The last state written, or None when there is none (or it cannot be read)."""
    try:
        record = json.loads(path.read_text())
        return SupervisorState(
            pid=int(record["pid"]), pid_started=int(record["pid_started"]),
            started_at=float(record["started_at"]), state=str(record["state"]),
            error=record.get("error"),
            components={name: _component(value)
                        for name, value in dict(record["components"]).items()},
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _component(record: dict[str, Any]) -> ComponentState:
    last_exit = record.get("last_exit")
    return ComponentState(**{**record, "last_exit": None if last_exit is None
                             else Exit(str(last_exit["reason"]), float(last_exit["at"]))})
