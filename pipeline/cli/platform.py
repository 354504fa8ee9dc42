"""The CLI's side of supervision: start a supervisor in the background, stop it, and report
what it runs (``faasflow up --detach``, ``down`` and ``status``).

What a supervisor records in its state file is believed only while it holds its lock; once
the lock is free, each process it named is checked against the kernel (pid and start time),
and anything still alive was left behind by a supervisor that was killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, replace

from pipeline import health
from pipeline.cli import state as run_state
from pipeline.cli.processes import (
    REPO,
    STOP_GRACE_S,
    STOP_ORDER,
    Component,
    Lock,
    OnReady,
    ProcessId,
    RunFiles,
    StartError,
    stop_unowned,
    supervisor_command,
)
from pipeline.cli.state import SupervisorState
from pipeline.cli.supervision import (
    RestartPolicy,
    component_state,
    component_view,
    supervisor_state,
)

SUPERVISOR_STOP_S = len(STOP_ORDER) * (STOP_GRACE_S + 5) + 5


def start_detached(files: RunFiles, children: Sequence[Component], on_ready: OnReady) -> int:
    """Start a supervisor in a session of its own and return its pid once all its children
    are ready, announcing each as it becomes ready. Raises StartError when it gives up."""
    log = files.log("supervisor")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        process = subprocess.Popen(supervisor_command(), stdin=subprocess.DEVNULL,
                                   stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=REPO)
    # the supervisor gives up on a child after its start timeout; this is only a backstop
    deadline = time.monotonic() + len(children) * RestartPolicy().start_timeout_s + 60
    announced: set[str] = set()
    while True:
        recorded = run_state.read(files.state)
        mine = recorded if recorded is not None and recorded.pid == process.pid else None
        for child in children:
            known = mine.components.get(child.name) if mine else None
            if child.name not in announced and known and known.ready_at and known.pid:
                on_ready(child, known.pid)
                announced.add(child.name)
        if mine is not None and mine.state == "running":
            return process.pid
        if process.poll() is not None:
            error = mine.error if mine is not None and mine.error else _last_line(files)
            raise StartError(f"{error} (supervisor exited with code {process.returncode}; "
                             f"see {log})")
        if time.monotonic() > deadline:
            raise StartError(f"not all started yet; the supervisor (pid {process.pid}) goes "
                             f"on trying: see {log}, or stop it with 'faasflow down'")
        time.sleep(0.2)


def _last_line(files: RunFiles) -> str:
    lines = files.log("supervisor").read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else "no output"


def running_supervisor(files: RunFiles) -> ProcessId | None:
    """The supervisor that holds this state directory's lock, if one does."""
    if not Lock(files.lock).held_elsewhere():
        return None
    deadline = time.monotonic() + 5.0  # a new supervisor writes its state right after locking
    while True:
        recorded = run_state.read(files.state)
        if recorded is not None:
            holder = ProcessId(recorded.pid, recorded.pid_started)
            if holder.alive():
                return holder
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)


def shut_down(files: RunFiles) -> list[str]:
    """Stop the supervisor (it stops its children) and anything a dead one left running;
    return what was stopped, in words. Raises StartError if a supervisor will not let go."""
    said: list[str] = []
    lock = Lock(files.lock)
    if not lock.acquire() and (holder := running_supervisor(files)) is not None:
        os.kill(holder.pid, signal.SIGTERM)
        if not lock.acquire(timeout_s=SUPERVISOR_STOP_S):
            os.kill(holder.pid, signal.SIGKILL)  # its children are leftovers now
        _until_gone(holder)  # it lets go of the lock just before it exits
        said.append(f"stopped the supervisor (pid {holder.pid}) and what it ran")
    if not lock.acquire(timeout_s=5.0):
        raise StartError(f"another process holds {files.lock}; try again")
    try:
        recorded = run_state.read(files.state)
        said += [f"stopped {name}, left running by a supervisor that died"
                 for name in stop_leftovers(recorded)]
        if recorded is not None and recorded.state not in ("stopped", "failed"):
            run_state.write(files.state, stopped(recorded))
    finally:
        lock.release()
    return said


def _until_gone(process: ProcessId, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while process.alive() and time.monotonic() < deadline:
        time.sleep(0.05)


def stop_leftovers(recorded: SupervisorState | None) -> list[str]:
    """Stop what a dead supervisor's state names as running; a process is recognized by its
    pid and start time, so a reused pid is never signalled. Call with the lock held."""
    if recorded is None:
        return []
    return [name for name in STOP_ORDER
            if (known := recorded.components.get(name)) is not None
            and known.process is not None and stop_unowned(known.process)]


def stopped(recorded: SupervisorState) -> SupervisorState:
    """The state once a dead supervisor's leftovers are stopped."""
    return replace(recorded, state="stopped", components={
        name: replace(known, state="stopped", pid=None, pid_started=None, probe=None,
                      restart_at=None)
        for name, known in recorded.components.items()})


def report(files: RunFiles) -> dict[str, object]:
    """The supervisor and each component, for ``faasflow status``."""
    recorded = run_state.read(files.state)
    if recorded is None:
        return {"supervisor": None, "components": {}}
    now = time.time()
    holder = running_supervisor(files)
    supervised = holder is not None and holder.pid == recorded.pid
    state = supervisor_state(recorded, lock_held=supervised)
    components: dict[str, object] = {}
    for name, known in recorded.components.items():
        alive = known.process is not None and known.process.alive()
        view = component_view(known, component_state(known, supervised=supervised,
                                                     alive=alive), now)
        if name == "worker" and view["pid"] is not None:
            latest = health.read(health.health_file(files.state_dir, "worker", known.pid or 0))
            view["health"] = asdict(latest) if latest is not None else None
        components[name] = view
    return {
        "supervisor": {"pid": recorded.pid if supervised else None, "state": state,
                       "uptime_s": round(now - recorded.started_at, 1) if supervised else None,
                       "error": recorded.error},
        "components": components,
    }
