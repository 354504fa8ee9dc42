"""The platform under benchmark: the embedded broker, a worker and a gateway, started the
way ``faasflow up --detach`` starts them (under a supervisor), with their own state
directory and ports."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import httpx

from pipeline.cli import state as run_state
from pipeline.cli.platform import shut_down, start_detached
from pipeline.cli.processes import RunFiles, components
from pipeline.settings import Settings

# Ports from FAASFLOW_BENCH_PORT_BASE (default 18080): the gateway at +0, a baseline
# server at +1, the broker at +1012 and its controller at +1013; two benchmarks can run
# side by side with bases 10 apart.
PORT_BASE = int(os.environ.get("FAASFLOW_BENCH_PORT_BASE", "18080"))
BASELINE_PORT = PORT_BASE + 1
BENCH_ENV = {
    "FAASFLOW_KAFKA_EMBEDDED_PORT": str(PORT_BASE + 1012),
    "FAASFLOW_KAFKA_EMBEDDED_CONTROLLER_PORT": str(PORT_BASE + 1013),
    "FAASFLOW_KAFKA_EMBEDDED_HEAP_MB": "768",
    "FAASFLOW_GATEWAY_PORT": str(PORT_BASE),
    "FAASFLOW_LOG_LEVEL": "WARNING",
}


class Stack:
    def __init__(self, out: Path) -> None:
        self.state_dir = out / "state"
        os.environ.update({**BENCH_ENV, "FAASFLOW_STATE_DIR": str(self.state_dir)})
        os.environ.pop("FAASFLOW_KAFKA_BOOTSTRAP", None)
        self.settings = Settings()
        self.files = RunFiles(self.state_dir)
        self.url = self.settings.gateway.url()
        self.token = ""
        self.measured: dict[str, float] = {}  # what a later measure builds on

    def start(self) -> Stack:
        """A fresh platform: every run starts from empty topics, so runs compare."""
        self.stop()  # whatever a previous, interrupted run left
        shutil.rmtree(self.state_dir, ignore_errors=True)
        self.token = self.settings.auth_token(create=True) or ""
        start_detached(self.files, components(self.settings), lambda component, pid: None)
        return self

    def stop(self) -> None:
        shut_down(self.files)

    def api(self, **options: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=60,
                                 headers={"Authorization": f"Bearer {self.token}"}, **options)

    def pid(self, name: str) -> int:
        recorded = run_state.read(self.files.state)
        pid = recorded.components[name].pid if recorded is not None else None
        if pid is None:
            raise RuntimeError(f"{name} is not running")
        return pid
