"""A stand-in for a worker in supervision tests: it marks itself ready and reports its health
the way a worker does, with a status of our choosing, then lives until killed (or for a
given number of seconds, then exits with code 1).

    python fake_worker.py STATE_DIR STATUS [LIFETIME_S]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from pipeline import health
from pipeline.settings import Settings


def main() -> None:
    settings = Settings(state_dir=Path(sys.argv[1]))
    status = sys.argv[2]
    ends = time.monotonic() + (float(sys.argv[3]) if len(sys.argv) > 3 else float("inf"))
    problems = ("invocations waiting, none done",) if status == "stalled" else ()
    report = health.health_file(settings.state_dir, "worker", os.getpid())
    health.write(report, health.Health(status, problems=problems))
    settings.worker_ready_marker(os.getpid()).touch()
    while time.monotonic() < ends:
        health.write(report, health.Health(status, problems=problems))
        time.sleep(0.1)
    sys.exit(1)


if __name__ == "__main__":
    main()
