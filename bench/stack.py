"""The platform under benchmark: the embedded broker, a worker and a gateway, started the
way ``faasflow up`` starts them, with their own state directory and ports."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx

from pipeline.cli.processes import Supervisor, components
from pipeline.settings import Settings

BENCH_ENV = {
    "FAASFLOW_KAFKA_EMBEDDED_PORT": "19092",
    "FAASFLOW_KAFKA_EMBEDDED_CONTROLLER_PORT": "19093",
    "FAASFLOW_KAFKA_EMBEDDED_HEAP_MB": "768",
    "FAASFLOW_GATEWAY_PORT": "18080",
    "FAASFLOW_LOG_LEVEL": "WARNING",
}


class Stack:
    def __init__(self, out: Path) -> None:
        self.state_dir = out / "state"
        os.environ.update({**BENCH_ENV, "FAASFLOW_STATE_DIR": str(self.state_dir)})
        os.environ.pop("FAASFLOW_KAFKA_BOOTSTRAP", None)
        self.settings = Settings()
        self.supervisor = Supervisor(self.settings)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.url = self.settings.gateway.url()
        self.token = ""

    def start(self) -> Stack:
        """A fresh platform: every run starts from empty topics, so runs compare."""
        self.stop()  # whatever a previous, interrupted run left
        shutil.rmtree(self.state_dir, ignore_errors=True)
        self.token = self.settings.auth_token(create=True) or ""
        for component in components(self.settings):
            process = self.supervisor.start(component)
            self.processes[component.name] = process
            self.supervisor.wait_ready(component, process)
        return self

    def stop(self) -> None:
        for name in ("gateway", "worker", "kafka"):
            self.supervisor.stop(name)

    def api(self, **options: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=60,
                                 headers={"Authorization": f"Bearer {self.token}"}, **options)

    def pid(self, name: str) -> int:
        return self.processes[name].pid
