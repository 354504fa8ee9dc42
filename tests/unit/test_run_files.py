"""What the CLI trusts about processes: the supervisor's state file, its lock, and process
identities that a zombie or a reused pid cannot fool."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pipeline.cli import state as run_state
from pipeline.cli.platform import stop_leftovers, stopped
from pipeline.cli.processes import REPO, Lock, ProcessId
from pipeline.cli.state import ComponentState, Exit, SupervisorState


def test_the_state_file_round_trips(tmp_path: Path) -> None:
    recorded = SupervisorState(pid=10, pid_started=123, started_at=1.5, state="running",
                               components={
                                   "worker": ComponentState(
                                       state="running", pid=11, pid_started=130, started_at=2.0,
                                       ready_at=3.0, restarts=2,
                                       last_exit=Exit("unhealthy: stalled for 31s", 1.75),
                                       probe="ok"),
                                   "gateway": ComponentState(),
                               })
    path = tmp_path / "run" / "supervisor.json"
    run_state.write(path, recorded)
    assert run_state.read(path) == recorded
    assert [p.name for p in path.parent.iterdir()] == ["supervisor.json"]  # no staged copy


def test_an_unreadable_state_file_reads_as_none(tmp_path: Path) -> None:
    assert run_state.read(tmp_path / "absent.json") is None
    (tmp_path / "half.json").write_text('{"pid": 1, "pid_st')
    assert run_state.read(tmp_path / "half.json") is None


def test_a_lock_is_held_by_one_holder_at_a_time(tmp_path: Path) -> None:
    first, second = Lock(tmp_path / "lock"), Lock(tmp_path / "lock")
    assert first.acquire()
    assert second.held_elsewhere()
    assert not second.acquire(timeout_s=0.2)
    first.release()
    assert not second.held_elsewhere()
    assert second.acquire()
    second.release()


def hold_lock(path: Path) -> subprocess.Popen[bytes]:
    code = ("import sys, time; from pathlib import Path; from pipeline.cli.processes import Lock;"
            "assert Lock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    assert holder.stdout is not None
    assert holder.stdout.readline() == b"held\n"
    return holder


def wait_for_zombie(pid: int) -> None:
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_a_killed_holder_frees_the_lock_even_before_it_is_reaped(tmp_path: Path) -> None:
    holder = hold_lock(tmp_path / "lock")
    holder.send_signal(signal.SIGKILL)
    wait_for_zombie(holder.pid)
    os.kill(holder.pid, 0)  # a zombie still answers kill(pid, 0)...
    assert not Lock(tmp_path / "lock").held_elsewhere()  # ...but holds no lock
    holder.wait()
    assert holder.stdout is not None
    holder.stdout.close()


def test_a_zombie_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    known = ProcessId.of(child.pid)
    assert known is not None
    wait_for_zombie(child.pid)  # exited, not reaped: kill(pid, 0) would still succeed
    os.kill(child.pid, 0)
    assert not known.alive()
    child.wait()
    assert ProcessId.of(child.pid) is None


def test_a_reused_pid_is_not_the_same_process() -> None:
    me = ProcessId.of(os.getpid())
    assert me is not None
    assert me.alive()
    assert not ProcessId(me.pid, me.started + 1).alive()


def test_leftovers_of_a_dead_supervisor_are_stopped() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             start_new_session=True)
    known = ProcessId.of(child.pid)
    assert known is not None
    recorded = SupervisorState(pid=1, pid_started=1, started_at=0.0, components={
        "worker": ComponentState(state="running", pid=known.pid, pid_started=known.started),
        # a pid the kernel gave to another process since: never signalled
        "gateway": ComponentState(state="running", pid=os.getpid(), pid_started=1),
    })
    assert stop_leftovers(recorded) == ["worker"]
    assert child.wait(5) == -signal.SIGTERM
    assert stopped(recorded).components["worker"] == ComponentState(state="stopped")
