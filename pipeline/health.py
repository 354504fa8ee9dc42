"""Health reports that processes write for their supervisor.

A worker has no HTTP port, so it writes its health to a file in the state directory
every few seconds; ``faasflow up``'s supervisor reads it. A report older than
``STALE_AFTER_S`` means the process no longer runs its event loop (hung, or stopped); a
report that says ``stalled`` means its consumers stopped making progress while work
waits. Either way the supervisor restarts it.

    ok        working normally
    starting  not yet consuming (loading the registry, joining the group)
    degraded  working, but a dependency is failing (the broker, the Docker Engine)
    stalled   work is waiting and nothing moves: restart me
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline.files import write_atomically

INTERVAL_S = 2.0
STALE_AFTER_S = 30.0
STATUSES = ("ok", "starting", "degraded", "stalled")


@dataclass(frozen=True, slots=True)
class Health:
    status: str
    pid: int = field(default_factory=os.getpid)
    at: float = field(default_factory=time.time)
    problems: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def stale(self, now: float | None = None) -> bool:
        return (now if now is not None else time.time()) - self.at > STALE_AFTER_S


def health_file(state_dir: Path, role: str, pid: int) -> Path:
    return state_dir / "run" / f"{role}-{pid}.health"


def write(path: Path, health: Health) -> None:
    """Atomically: a reader never sees half a report."""
    write_atomically(path, json.dumps(asdict(health)))


def read(path: Path) -> Health | None:
    """The last report, or None when there is none (or it cannot be read)."""
    try:
        record = json.loads(path.read_text())
        return Health(status=str(record["status"]), pid=int(record["pid"]),
                      at=float(record["at"]), problems=tuple(record.get("problems") or ()),
                      details=dict(record.get("details") or {}))
    except (OSError, ValueError, KeyError, TypeError):
        return None
