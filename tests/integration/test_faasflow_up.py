"""``faasflow up --detach`` keeps the platform alive; ``status`` tells the truth; ``down``
leaves nothing running. Real CLI processes, a real worker and gateway on the session's
broker, real signals; what runs is checked in /proc.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline import health
from tests.integration.conftest import KafkaContainer
from tests.integration.supervised import Supervised, running_again, start, stop


@pytest.fixture(scope="module")
def supervised(kafka: KafkaContainer,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervised]:
    platform = start(kafka, tmp_path_factory.mktemp("supervised"))
    yield platform
    stop(platform)


def test_up_starts_everything_under_one_supervisor(supervised: Supervised) -> None:
    status = supervised.status()
    assert status["supervisor"]["state"] == "running"
    assert status["supervisor"]["pid"] in supervised.supervisors()
    assert set(status["components"]) == {"worker", "gateway"}  # the broker is the session's
    for view in status["components"].values():
        assert view["state"] == "running"
        assert view["pid"] in supervised.processes()


def test_a_killed_worker_is_started_again(supervised: Supervised, unique: str) -> None:
    before = supervised.component("worker")
    os.kill(before["pid"], signal.SIGKILL)

    after = supervised.until("worker", running_again(before["pid"]))

    assert supervised.state_dir.joinpath("run", f"worker-{after['pid']}.ready").exists()
    assert after["restarts"] == before["restarts"] + 1
    assert after["last_exit"]["reason"] == "SIGKILL"
    # and it works: an event delivered now is run
    supervised.deploy(f"{unique}-echo", "faasflow/echo:latest")
    supervised.subscribe(f"{unique}-echo", unique)
    event_id = supervised.deliver(supervised.webhook(unique, unique), b"after a crash")
    (result,) = supervised.results(event_id)
    assert result["output"] == "after a crash"


def test_right_after_a_kill_the_worker_comes_back(supervised: Supervised) -> None:
    # The bug: `up --detach` right after a kill took the dead, unreaped worker for a live
    # one (it still answers kill(pid, 0)) and started none; no one else did either.
    (killed,) = supervised.processes("worker")
    os.kill(killed, signal.SIGKILL)
    done = supervised.cli("up", "--detach")
    assert done.returncode == 0, done.stderr

    deadline = time.monotonic() + 90
    while not (back := [pid for pid in supervised.processes("worker") if pid != killed and
                        supervised.state_dir.joinpath("run", f"worker-{pid}.ready").exists()]):
        assert time.monotonic() < deadline, "no worker is running"
        time.sleep(0.5)
    assert len(back) == 1


def test_a_killed_gateway_is_started_again(supervised: Supervised) -> None:
    before = supervised.component("gateway")
    os.kill(before["pid"], signal.SIGKILL)

    after = supervised.until("gateway", running_again(before["pid"]))

    assert after["restarts"] == before["restarts"] + 1
    assert after["last_exit"]["reason"] == "SIGKILL"
    assert supervised.anonymous.get("/healthz").status_code == 200


def test_up_again_says_so_and_starts_no_second_supervisor(supervised: Supervised) -> None:
    first = supervised.supervisors()
    pids = {name: view["pid"] for name, view in supervised.status()["components"].items()}

    done = supervised.cli("up", "--detach")

    assert done.returncode == 0, done.stderr
    assert "already running" in done.stdout
    assert supervised.supervisors() == first
    assert len(first) == 1
    assert {name: view["pid"]
            for name, view in supervised.status()["components"].items()} == pids


def test_a_stopped_worker_is_killed_and_started_again(supervised: Supervised) -> None:
    before = supervised.component("worker")
    report = health.health_file(supervised.state_dir, "worker", before["pid"])
    deadline = time.monotonic() + 3 * health.INTERVAL_S
    while health.read(report) is None:
        assert time.monotonic() < deadline, "the worker writes no health report"
        time.sleep(0.2)
    os.kill(before["pid"], signal.SIGSTOP)
    try:
        after = supervised.until("worker", running_again(before["pid"]),
                                 timeout_s=health.STALE_AFTER_S + 90)
    finally:
        with contextlib.suppress(ProcessLookupError):  # not killed: the test failed
            os.kill(before["pid"], signal.SIGCONT)
    assert after["restarts"] == before["restarts"] + 1
    assert after["last_exit"]["reason"].startswith("unhealthy: health report")


def test_down_leaves_nothing_running(kafka: KafkaContainer, tmp_path: Path) -> None:
    platform = start(kafka, tmp_path)
    assert len(platform.processes()) == 3  # supervisor, worker, gateway

    stop(platform)

    assert platform.processes() == []
    status = platform.status()
    assert status["supervisor"]["state"] == "stopped"
    assert {view["state"] for view in status["components"].values()} == {"stopped"}


def test_down_stops_what_a_killed_supervisor_left(kafka: KafkaContainer, tmp_path: Path) -> None:
    platform = start(kafka, tmp_path)
    (supervisor,) = platform.supervisors()
    os.kill(supervisor, signal.SIGKILL)  # its children live on, and no one reaps it

    status = platform.status()
    assert status["supervisor"]["state"] == "dead"
    assert {view["state"] for view in status["components"].values()} == {"unsupervised"}
    done = platform.cli("down")

    assert done.returncode == 0, done.stderr
    assert "stopped worker, left running by a supervisor that died" in done.stdout
    assert platform.processes() == []
    platform.stop()
