"""The platform under test: a gateway and a worker, each a real child process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

TOKEN = "test-token-0123456789"
REPO = Path(__file__).resolve().parents[2]


def wait_for_kafka(bootstrap: str, timeout_s: float) -> None:
    async def ping() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
        try:
            await admin.start()
            await admin.list_topics()
        finally:
            await admin.close()

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            asyncio.run(ping())
            return
        except (KafkaError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def wait_for(check: Any, timeout_s: float = 60, every_s: float = 0.3) -> Any:
    """``check()``'s first truthy value, or its last one after ``timeout_s``: the caller
    asserts on it, with a message of its own."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(every_s)


class Platform:
    start_timeout_s = 60.0

    def __init__(self, bootstrap: str, prefix: str, port: int, state_dir: Path,
                 **env: str) -> None:
        self.prefix = prefix
        self.url = f"http://127.0.0.1:{port}"
        self.state_dir = state_dir
        self.env = {
            **os.environ,
            "FAASFLOW_KAFKA_BOOTSTRAP": bootstrap,
            "FAASFLOW_KAFKA_TOPIC_PREFIX": prefix,
            "FAASFLOW_KAFKA_SESSION_TIMEOUT_S": "6",
            "FAASFLOW_KAFKA_PUBLISH_TIMEOUT_S": "3",
            "FAASFLOW_GATEWAY_PORT": str(port),
            "FAASFLOW_GATEWAY_AUTH_TOKEN": TOKEN,
            "FAASFLOW_MAX_PAYLOAD_BYTES": str(64 * 1024),
            "FAASFLOW_STATE_DIR": str(state_dir),
            "FAASFLOW_GATEWAY_PROCESSES": "1",  # test_gateway_processes runs several
            **env,
        }
        self.gateway: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.api = httpx.Client(base_url=self.url, timeout=60,
                                headers={"Authorization": f"Bearer {TOKEN}"})
        self.anonymous = httpx.Client(base_url=self.url, timeout=60)

    def _spawn(self, role: str) -> subprocess.Popen[bytes]:
        with (self.state_dir / f"{role}.log").open("ab") as log:
            return subprocess.Popen([sys.executable, "-m", "pipeline", role], env=self.env,
                                    stdout=log, stderr=subprocess.STDOUT, cwd=REPO)

    def log(self, role: str) -> str:
        return (self.state_dir / f"{role}.log").read_text(errors="replace")

    def start_gateway(self) -> None:
        self.gateway = self._spawn("gateway")
        self._wait(lambda: self._healthy(), "gateway", self.gateway)

    def start_worker(self) -> None:
        worker = self.worker = self._spawn("worker")
        marker = self.state_dir / "run" / f"worker-{worker.pid}.ready"
        self._wait(marker.exists, "worker", worker)

    def _healthy(self) -> bool:
        try:
            return self.anonymous.get("/healthz").is_success
        except httpx.TransportError:
            return False

    def _wait(self, ready: Any, role: str, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{role} did not start:\n{self.log(role)[-4000:]}")
            time.sleep(0.1)

    def stop_gateway(self) -> None:
        _terminate(self.gateway)
        self.gateway = None

    def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait(10)
        self.worker = None

    def stop(self) -> None:
        _terminate(self.gateway)
        _terminate(self.worker)
        self.api.close()
        self.anonymous.close()

    # API helpers

    def deploy(self, name: str, image: str | None, **fields: Any) -> dict[str, Any]:
        body = {"image": image, **fields} if image else fields
        response = self.api.put(f"/v1/functions/{name}", json=body)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def webhook(self, name: str, source: str) -> dict[str, Any]:
        response = self.api.post("/v1/webhooks", json={"name": name, "source": source})
        assert response.status_code == 201, response.text
        return response.json()

    def subscribe(self, function: str, source: str) -> dict[str, Any]:
        response = self.api.post("/v1/subscriptions", json={"function": function,
                                                            "source": source})
        assert response.status_code in (200, 201), response.text
        return response.json()

    def deliver(self, hook: dict[str, Any], body: bytes, content_type: str = "text/plain") -> str:
        response = self.anonymous.post(hook["url"], content=body,
                                       headers={"Content-Type": content_type})
        assert response.status_code == 202, response.text
        return str(response.json()["event_id"])

    def results(self, event_id: str, wait_s: float = 45) -> list[dict[str, Any]]:
        response = self.api.get("/v1/invocations", params={"event_id": event_id, "wait": wait_s},
                                timeout=wait_s + 15)  # the gateway answers after ``wait``
        assert response.status_code == 200, response.text
        return list(response.json())


def _terminate(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
