"""A platform as users run it: ``faasflow up --detach`` starts it, under its supervisor,
and the CLI drives it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.cli.processes import REPO
from tests.integration.conftest import KafkaContainer, free_port
from tests.integration.platform import Platform


class Supervised(Platform):
    """A platform that ``faasflow up --detach`` started, driven through the CLI."""

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pipeline", *args], env=self.env,
                              cwd=REPO, capture_output=True, text=True, timeout=150)

    def status(self) -> dict[str, Any]:
        done = self.cli("status", "--json")
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    def component(self, name: str) -> dict[str, Any]:
        return dict(self.status()["components"][name])

    def until(self, name: str, check: Callable[[dict[str, Any]], bool],
              timeout_s: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while not check(view := self.component(name)):
            assert time.monotonic() < deadline, f"{name}: {view}"
            time.sleep(0.5)
        return view

    def processes(self, role: str = "") -> list[int]:
        """Live processes (not zombies) that run with this platform's state directory; with
        ``role``, those that run ``python -m pipeline ROLE``. Read from /proc alone."""
        mark = f"FAASFLOW_STATE_DIR={self.state_dir}".encode()
        command = f"\0pipeline\0{role}\0".encode() if role else b""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                if (stat.rsplit(")", 1)[1].split()[0] != "Z"
                        and mark in (entry / "environ").read_bytes()
                        and command in (entry / "cmdline").read_bytes() + b"\0"):
                    found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
        return found

    def supervisors(self) -> list[int]:
        return self.processes("supervise")


def start(kafka: KafkaContainer | None, state_dir: Path, **env: str) -> Supervised:
    """``faasflow up --detach`` on the session's broker (``kafka``), or on an embedded
    broker of its own (None: give it free ports in ``env``)."""
    platform = Supervised(kafka.bootstrap if kafka else "", f"s{uuid.uuid4().hex[:10]}",
                          free_port(), state_dir, **env)
    if kafka is None:
        platform.env.pop("FAASFLOW_KAFKA_BOOTSTRAP")
    done = platform.cli("up", "--detach")
    assert done.returncode == 0, done.stdout + done.stderr + platform.log("logs/supervisor")
    return platform


def stop(platform: Supervised) -> None:
    done = platform.cli("down")
    assert done.returncode == 0, done.stderr
    platform.stop()


def running_again(old_pid: int) -> Callable[[dict[str, Any]], bool]:
    return lambda view: view["state"] == "running" and view["pid"] != old_pid
