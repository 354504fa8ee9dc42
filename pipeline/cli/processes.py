"""The platform's processes on one machine: what to run, and how to tell one is really alive.

``faasflow up`` runs the embedded broker, a worker and a gateway, each in a session (and
process group) of its own, under a supervisor (``pipeline.cli.supervisor``). This module
holds what both the supervisor and the CLI need: the command lines, the files in the state
directory, the supervisor's lock, and process identities that a reused pid or a zombie
cannot fool.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.settings import Settings

REPO = Path(__file__).resolve().parents[2]
KAFKA_POM = REPO / "compose" / "kafka" / "pom.xml"
STOP_GRACE_S = 20.0
STOP_ORDER = ("gateway", "worker", "kafka")


class StartError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    command: list[str]
    ready: str  # what "ready" means, for messages


OnReady = Callable[[Component, int], None]  # told when a component is first ready, with its pid

def kafka_version() -> str:
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", KAFKA_POM.read_text())
    if match is None:
        raise StartError(f"no kafka.version in {KAFKA_POM}")
    return match.group(1)


def kafka_jars(settings: Settings) -> Path:
    """The broker's jars, resolved from Maven Central once into the cache folder."""
    libs = settings.cache_dir / "kafka" / kafka_version() / "libs"
    if not any(libs.glob("kafka_2.13-*.jar")):
        libs.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mvn", "-q", "-f", str(KAFKA_POM), "dependency:copy-dependencies",
             "-DincludeScope=runtime", f"-DoutputDirectory={libs}"],
            check=True,
        )
    return libs


def components(settings: Settings) -> list[Component]:
    """What ``faasflow up`` runs, in start order."""
    python = [sys.executable, "-m"]
    found: list[Component] = []
    if settings.kafka.bootstrap is None:
        kafka = settings.kafka
        found.append(Component("kafka", [
            *python, "pipeline.broker", "--jars", str(kafka_jars(settings)),
            "--data", str(settings.state_dir / "kafka"), "--port", str(kafka.embedded_port),
            "--controller-port", str(kafka.embedded_controller_port),
            "--heap-mb", str(kafka.embedded_heap_mb),
            "--message-max-bytes", str(kafka.message_bytes),
        ], f"broker on 127.0.0.1:{kafka.embedded_port}"))
    found.append(Component("worker", [*python, "pipeline", "worker"], "worker"))
    found.append(Component("gateway", [*python, "pipeline", "gateway"],
                           f"gateway on {settings.gateway.url()}"))
    return found


def supervisor_command() -> list[str]:
    return [sys.executable, "-m", "pipeline", "supervise"]


@dataclass(frozen=True, slots=True)
class RunFiles:
    """Where the supervisor keeps what the CLI reads: its state, its lock, the logs."""

    state_dir: Path

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def state(self) -> Path:
        return self.run_dir / "supervisor.json"

    @property
    def lock(self) -> Path:
        return self.run_dir / "supervisor.lock"

    def log(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"


class Lock:
    """An exclusive ``flock`` that the supervisor holds for its whole life.

    The kernel drops it when the holder dies, however it dies (even SIGKILL, even while its
    parent has not reaped it): whether it is held is the truth about whether a supervisor
    runs, where ``kill(pid, 0)`` would still answer for a zombie or a reused pid.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, timeout_s: float = 0.0) -> bool:
        """Take the lock (or keep it), waiting up to ``timeout_s`` for another process to let
        go of it (another process may just be probing it)."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.05)
                continue
            self._fd = fd
            return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the lock
            self._fd = None

    def held_elsewhere(self) -> bool:
        """Whether another process holds it (probing takes it for an instant)."""
        if not self.acquire():
            return True
        self.release()
        return False


@dataclass(frozen=True, slots=True)
class ProcessId:
    """A process as the kernel knows it: its pid and the time it started (in clock ticks
    since boot, from ``/proc/PID/stat``). A pid can be reused; the pair cannot."""

    pid: int
    started: int

    @classmethod
    def of(cls, pid: int) -> ProcessId | None:
        stat = _stat(pid)
        return None if stat is None else cls(pid, int(stat[19]))

    def alive(self) -> bool:
        """Running (or stopped) and not a zombie waiting for its parent."""
        stat = _stat(self.pid)
        return stat is not None and stat[0] not in ("Z", "X") and int(stat[19]) == self.started


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` from the state on (the name before it may hold
    spaces and parentheses), or None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(")") + 2:].split()


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal a component's whole process group (its leader's pid names the group), so
    nothing it started outlives it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def stop_unowned(process: ProcessId, grace_s: float = STOP_GRACE_S) -> bool:
    """Stop a process group that is not our child (we cannot reap it): SIGTERM, then SIGKILL
    once ``grace_s`` has passed. Returns whether there was anything to stop."""
    if not process.alive():
        return False
    signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while process.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    if process.alive():
        signal_group(process.pid, signal.SIGKILL)
        while process.alive() and time.monotonic() < deadline + 5:
            time.sleep(0.05)
    return True
