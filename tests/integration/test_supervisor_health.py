"""The supervisor's health policy on real processes: a worker that stops reporting (SIGSTOP),
or reports "stalled", is killed and started again; a crashing one backs off; one that ran well
is started again at once.

The worker here is ``fake_worker.py``, which writes health reports the way a worker does (a
real worker's reports: test_faasflow_up.py). The supervisor runs in this process with short
timings; everything it knows is read back as ``faasflow status`` reads it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli.platform import report
from pipeline.cli.processes import Component, ProcessId
from pipeline.cli.supervision import RestartPolicy
from pipeline.cli.supervisor import Supervisor
from pipeline.settings import Settings

FAST = RestartPolicy(backoff_s=0.2, max_backoff_s=2.0, jitter_s=0.1, reset_after_s=60.0,
                     check_interval_s=0.2, start_timeout_s=10.0, stale_after_s=2.0,
                     stall_grace_s=1.0)


def fake_worker(state_dir: Path, status: str, lifetime_s: float | None = None) -> Component:
    command = [sys.executable, "-m", "tests.integration.fake_worker", str(state_dir), status]
    return Component("worker", command + ([str(lifetime_s)] if lifetime_s else []), "worker")


class Running:
    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self.files = supervisor.files

    async def worker(self) -> dict[str, Any]:
        status = await asyncio.to_thread(report, self.files)
        components: dict[str, dict[str, Any]] = status["components"]  # type: ignore[assignment]
        return components.get("worker", {"state": None, "restarts": 0})

    async def until(self, check: Callable[[dict[str, Any]], bool], timeout_s: float = 30,
                    ) -> dict[str, Any]:
        async with asyncio.timeout(timeout_s):
            while True:  # the state file is polled, as faasflow status reads it
                view = await self.worker()
                if check(view):
                    return view
                await asyncio.sleep(0.1)


@pytest.fixture
async def supervise(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    started: list[tuple[Supervisor, asyncio.Task[None]]] = []

    async def start(worker: Component, policy: RestartPolicy = FAST) -> Running:
        supervisor = Supervisor(Settings(state_dir=tmp_path), [worker], policy)
        task = asyncio.create_task(supervisor.run())
        started.append((supervisor, task))
        running = Running(supervisor)
        await running.until(lambda view: view["state"] == "running")
        return running

    yield start
    for supervisor, task in started:
        supervisor.request_stop()
        await task


def running_again(old_pid: int) -> Callable[[dict[str, Any]], bool]:
    return lambda view: view["state"] == "running" and view["pid"] != old_pid


async def test_a_stopped_worker_is_killed_and_started_again(
    supervise: Callable[..., Any], tmp_path: Path,
) -> None:
    running = await supervise(fake_worker(tmp_path, "ok"))
    first = await running.worker()
    stopped = ProcessId.of(first["pid"])
    assert stopped is not None
    os.kill(first["pid"], signal.SIGSTOP)  # alive, but its reports stop

    again = await running.until(running_again(first["pid"]))

    assert again["restarts"] == 1
    assert re.fullmatch(r"unhealthy: health report \d+s old \(hung or stopped\)",
                        again["last_exit"]["reason"])
    assert not stopped.alive()  # killed and reaped, not left stopped
    assert not Settings(state_dir=tmp_path).worker_ready_marker(first["pid"]).exists()
    assert again["health"]["status"] == "ok"
    assert again["health"]["pid"] == again["pid"]


async def test_a_stalled_worker_is_restarted_after_its_grace_period(
    supervise: Callable[..., Any], tmp_path: Path,
) -> None:
    running = await supervise(fake_worker(tmp_path, "stalled"))
    first = await running.worker()
    assert first["probe"] == "stalled invocations waiting, none done"

    again = await running.until(running_again(first["pid"]))

    assert again["restarts"] >= 1
    assert re.fullmatch(r"unhealthy: stalled for \d+s \(invocations waiting, none done\)",
                        again["last_exit"]["reason"])


async def test_a_worker_that_keeps_exiting_early_backs_off(
    supervise: Callable[..., Any], tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "pipeline.cli.supervisor")
    running = await supervise(fake_worker(tmp_path, "ok", lifetime_s=0.3))

    await running.until(lambda view: view["restarts"] >= 4)

    scheduled = [re.search(r"exit (\d+) in a row; starting it again in ([\d.]+)s", r.message)
                 for r in caplog.records]
    delays = {int(m[1]): float(m[2]) for m in scheduled if m}
    assert sorted(delays)[:4] == [1, 2, 3, 4]
    for streak in (1, 2, 3, 4):  # 0.2 · 2ⁿ⁻¹ plus up to 0.1 of jitter, shown to 0.1 s
        assert FAST.backoff_s * 2 ** (streak - 1) - 0.05 <= delays[streak] \
            <= FAST.backoff_s * 2 ** (streak - 1) + FAST.jitter_s + 0.05
    assert (await running.worker())["last_exit"]["reason"] == "exit code 1"


async def test_a_worker_that_ran_well_is_started_again_at_once(
    supervise: Callable[..., Any], tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "pipeline.cli.supervisor")
    policy = replace(FAST, reset_after_s=0.5, backoff_s=5.0)
    running = await supervise(fake_worker(tmp_path, "ok", lifetime_s=1.0), policy)

    await running.until(lambda view: view["restarts"] >= 2, timeout_s=20)

    # each exit came after a good run: no backoff (it would be 5 s and more)
    assert not [r for r in caplog.records if "in a row" in r.message]
