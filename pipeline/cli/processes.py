"""Running the platform on one machine: the embedded broker, a gateway and a worker.

Each component is a child process with a pid file and a log file in the state
directory, so ``faasflow down`` and ``faasflow status`` find what ``up`` started.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from pipeline.settings import Settings

REPO = Path(__file__).resolve().parents[2]
KAFKA_POM = REPO / "compose" / "kafka" / "pom.xml"
STOP_GRACE_S = 20.0


class StartError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    command: list[str]
    ready: str  # what "ready" means, for messages


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
    python = [sys.executable, "-m"]
    found: list[Component] = []
    if settings.kafka.bootstrap is None:
        kafka = settings.kafka
        found.append(Component("kafka", [
            *python, "pipeline.broker", "--jars", str(kafka_jars(settings)),
            "--data", str(settings.state_dir / "kafka"), "--port", str(kafka.embedded_port),
            "--controller-port", str(kafka.embedded_controller_port),
            "--heap-mb", str(kafka.embedded_heap_mb),
        ], f"broker on 127.0.0.1:{kafka.embedded_port}"))
    found.append(Component("worker", [*python, "pipeline", "worker"], "worker"))
    found.append(Component("gateway", [*python, "pipeline", "gateway"],
                           f"gateway on {settings.gateway.url()}"))
    return found


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.run_dir = settings.state_dir / "run"
        self.log_dir = settings.state_dir / "logs"

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def pid(self, name: str) -> int | None:
        try:
            pid = int(self.pid_file(name).read_text())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def start(self, component: Component) -> subprocess.Popen[bytes]:
        if self.pid(component.name):
            raise StartError(f"{component.name} is already running (pid {self.pid(component.name)})"
                             "; stop it with 'faasflow down'")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file(component.name).open("ab") as log:
            process = subprocess.Popen(
                component.command, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, cwd=REPO,
            )
        self.pid_file(component.name).write_text(str(process.pid))
        return process

    def wait_ready(self, component: Component, process: subprocess.Popen[bytes],
                   timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise StartError(f"{component.name} exited with code {process.returncode}; "
                                 f"see {self.log_file(component.name)}")
            if self._is_ready(component.name, process.pid):
                return
            time.sleep(0.2)
        raise StartError(f"{component.ready} not ready after {timeout_s:.0f}s; "
                         f"see {self.log_file(component.name)}")

    def _is_ready(self, name: str, pid: int) -> bool:
        if name == "kafka":
            with socket.socket() as sock:
                sock.settimeout(0.5)
                return sock.connect_ex(("127.0.0.1", self.settings.kafka.embedded_port)) == 0
        if name == "gateway":
            try:
                return httpx.get(f"{self.settings.gateway.url()}/healthz", timeout=1).is_success
            except httpx.TransportError:
                return False
        return self.settings.worker_ready_marker(pid).exists() if name == "worker" else True

    def stop(self, name: str) -> bool:
        pid = self.pid(name)
        self.pid_file(name).unlink(missing_ok=True)
        if pid is None:
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            _signal_group(pid, signal.SIGKILL)
        return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child of ours counts as gone
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return waited == 0


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
