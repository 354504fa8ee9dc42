"""The standing fault suite, on the real broker and Docker Engine, with the platform run as
users run it (``faasflow up --detach``, under its supervisor).

``make chaos`` runs it at full scale (``FAASFLOW_CHAOS=full``: 5,000 events, three kills,
the Docker daemon restarted); ``make test`` runs a short slice of the same scenarios.
What is checked is read back from the results topic itself: every acknowledged event has
exactly one final Result per subscribed function, and no final Result was ever written
twice (so none changed after it was first seen).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.integration.conftest import KafkaContainer, free_port
from tests.integration.load import Background, Sent, Written, wait_until_final
from tests.integration.supervised import Supervised, start, stop

FULL = os.environ.get("FAASFLOW_CHAOS") == "full"
pytestmark = pytest.mark.chaos

ECHO = "def main(args):\n    return args\n"
UPPER = "def main(args):\n    return args.upper() if isinstance(args, str) else args\n"


def report(name: str, sent: Sent, written: Written, functions: int) -> dict[str, Any]:
    """Figures per fault: sent, acknowledged, final, lost, duplicated; printed for the
    closing note and checked by the caller."""
    finals = written.finals()
    by_event = written.by_event()
    acknowledged = set(sent.acknowledged)
    complete = {e for e in acknowledged if len(by_event.get(e, ())) == functions
                and all(finals[i] for i in by_event[e])}
    figures = {
        "fault": name, "sent": len(sent.acknowledged) + sum(sent.refused.values())
        + sent.unanswered, "acknowledged": len(acknowledged),
        "refused": dict(sent.refused), "unanswered": sent.unanswered,
        "final": sum(1 for records in finals.values() if records),
        "lost": len(acknowledged - complete),
        "duplicated": sum(1 for records in finals.values() if len(records) > 1),
        "slowest_answer_s": round(sent.slowest_s, 2),
    }
    print(f"\nCHAOS {figures}")
    return figures


@pytest.fixture
def up(kafka: KafkaContainer, tmp_path: Path) -> Iterator[Supervised]:
    platform = start(kafka, tmp_path)
    yield platform
    stop(platform)


def warm_pair(platform: Supervised, source: str) -> dict[str, Any]:
    """Two warm code functions subscribed to ``source``; its webhook."""
    for name, code in ((f"{source}-echo", ECHO), (f"{source}-upper", UPPER)):
        platform.deploy(name, None, runtime="python", code=code, mode="warm", min_warm=1)
        platform.subscribe(name, source)
    return platform.webhook(source, source)


def test_worker_killed_at_random_moments_loses_and_repeats_nothing(
    up: Supervised, unique: str
) -> None:
    events, kills = (5000, 3) if FULL else (300, 1)
    hook = warm_pair(up, unique)
    load = Background(up.url + hook["url"], [f"event {i}".encode() for i in range(events)])
    for _ in range(kills):
        time.sleep(random.uniform(2, 6))
        worker = up.component("worker")
        os.kill(worker["pid"], signal.SIGKILL)
        up.until("worker", lambda view, pid=worker["pid"]: view["state"] == "running"
                 and view["pid"] != pid, timeout_s=120)
    sent = load.wait()

    written = wait_until_final(up.env["FAASFLOW_KAFKA_BOOTSTRAP"], up.prefix,
                               sent.acknowledged, per_event=2, timeout_s=600)

    figures = report(f"worker SIGKILLed {kills}x", sent, written, functions=2)
    assert figures["acknowledged"] == events
    assert figures["lost"] == 0
    assert figures["duplicated"] == 0
    assert {r["status"] for records in written.finals().values() for r in records} == {
        "succeeded"}
