"""The warm runtime: long-lived containers running an OpenWhisk-protocol runtime
(``functions/runtime``), reached over a unix socket in a bind-mounted directory, as Fn's
hot functions are — so a warm container needs no network at all.

What runs inside depends on the function:
- a code function (``runtime`` + ``code``): the language's runtime image, sent the source
  once with ``POST /init``;
- an image built from a runtime image (label ``faasflow.runtime``): its own entrypoint,
  which loads the handler baked into it;
- any other image with python3: its own command, run per request by the Python runtime's
  exec mode (the classic watchdog's fork-per-request), mounted read-only from this repo.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import secrets
import shutil
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import docker
import httpx
import requests
from docker.errors import APIError, NotFound

from pipeline.errors import RuntimeUnavailable
from pipeline.records import (
    Failure,
    FunctionSpec,
    Language,
    Status,
    is_json_type,
    strict_loads,
    utc_now,
)
from pipeline.runtime.base import RunOutcome, RunRequest, capped
from pipeline.runtime.docker import NOBODY, hardening, remove_container
from pipeline.runtime.pool import Capacity, FunctionPool, PoolRetired
from pipeline.settings import Settings

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
SHIM_DIR = REPO / "functions" / "runtime" / "python"
RUNTIME_IMAGES = {Language.PYTHON: "faasflow/runtime-python:latest",
                  Language.NODE: "faasflow/runtime-node:latest"}
SOCKET_DIR_IN_CONTAINER = "/run/faasflow"
SOCKET_NAME = "runtime.sock"
OWNER = f"{socket.gethostname()}:{os.getpid()}"
HEALTH_TIMEOUT_S = 1.0


class StartFailed(Exception):
    """A warm container did not come up or refused its code; the reason is the user's."""


class WarmContainer:
    """One running runtime container, and the HTTP client that reaches it."""

    def __init__(self, runner: WarmRunner, ident: str, socket_dir: Path) -> None:
        self._runner = runner
        self.id = ident
        self.socket_dir = socket_dir
        self.init_s = 0.0
        self.client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(socket_dir / SOCKET_NAME)),
            base_url="http://runtime",
        )

    async def healthy(self) -> bool:
        try:
            response = await self.client.get("/health", timeout=HEALTH_TIMEOUT_S)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def destroy(self) -> None:
        await self.client.aclose()
        await asyncio.to_thread(self._runner.remove_container, self.id)
        shutil.rmtree(self.socket_dir, ignore_errors=True)


class WarmRunner:
    """``Runner`` adapter for warm functions: one ``FunctionPool`` per deployed version."""

    def __init__(self, settings: Settings,
                 secret_env: Callable[[FunctionSpec], Mapping[str, str]]) -> None:
        self._settings = settings.runtime
        self._secret_env = secret_env
        self._socket_root = settings.runtime.socket_dir
        self._capacity = Capacity(settings.runtime.max_warm_containers)
        self._pools: dict[str, tuple[FunctionSpec, FunctionPool[WarmContainer]]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._maintainer: asyncio.Task[None] | None = None
        try:
            self._docker = docker.from_env(timeout=60)
        except docker.errors.DockerException as exc:
            raise RuntimeUnavailable(f"Docker Engine unreachable: {exc}") from exc

    async def start(self) -> None:
        await asyncio.to_thread(self._remove_orphans)
        self._maintainer = asyncio.create_task(self._maintain(), name="warm-pools")

    async def close(self) -> None:
        if self._maintainer is not None:
            self._maintainer.cancel()
        pools = [pool for _, pool in self._pools.values()]
        self._pools.clear()
        await asyncio.gather(*(pool.drain() for pool in pools), *self._background,
                             return_exceptions=True)
        await asyncio.to_thread(self._docker.close)

    # pools

    def pool(self, function: FunctionSpec) -> FunctionPool[WarmContainer]:
        """The pool of this version of the function; a redeploy drains the previous one."""
        current = self._pools.get(function.name)
        if current is not None and current[0] == function:
            return current[1]
        if current is not None:
            self._spawn(current[1].drain())
        pool: FunctionPool[WarmContainer] = FunctionPool(
            function.name, lambda: self._start_container(function), self._capacity,
            max_size=function.max_concurrency, min_warm=function.min_warm,
            idle_timeout_s=function.idle_timeout_s,
        )
        self._pools[function.name] = (function, pool)
        return pool

    def follow(self, function: FunctionSpec | None, name: str) -> None:
        """A function was deployed (prewarm it) or deleted (``None``: drain its pool)."""
        if function is None or function.mode.value != "warm":
            old = self._pools.pop(name, None)
            if old is not None:
                self._spawn(old[1].drain())
            return
        self._spawn(self.pool(function).prewarm())

    def restart(self, function: FunctionSpec) -> None:
        """Replace every container of the function (its secrets changed)."""
        old = self._pools.pop(function.name, None)
        if old is not None:
            self._spawn(old[1].drain())
        self.follow(function, function.name)

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("warm pool work failed: %s", task.exception())

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(self._settings.maintain_interval_s)
            for _, pool in list(self._pools.values()):
                try:
                    await pool.maintain()
                except (StartFailed, RuntimeUnavailable) as exc:
                    log.warning("pool %s: %s", pool.name, exc)

    # one call

    async def run(self, request: RunRequest) -> RunOutcome:
        started_at, t0 = utc_now(), time.perf_counter()
        while True:
            pool = self.pool(request.function)
            try:
                container, cold = await pool.acquire()
                break
            except PoolRetired:
                continue
            except StartFailed as exc:
                return _outcome(Status.FAILED, started_at, t0, error=str(exc),
                                failure=Failure.START)
        healthy = False
        try:
            outcome, healthy = await self._call(container, request, started_at, t0)
            return replace(outcome, cold_start=cold, init_s=container.init_s if cold else None)
        finally:
            await pool.release(container, healthy=healthy)

    async def _call(self, container: WarmContainer, request: RunRequest, started_at: str,
                    t0: float) -> tuple[RunOutcome, bool]:
        """The outcome, and whether the container is fit for the next call (a timed-out
        or crashed one is replaced)."""
        function = request.function
        body = {"value": input_value(request.payload, request.content_type),
                "activation_id": request.invocation_id,
                "deadline": int((time.time() + function.timeout_s) * 1000),
                "env": dict(request.env)}  # the per-call CE_* variables, as cold calls get
        try:
            response = await container.client.post(
                "/run", json=body, headers={"X-Faasflow-Logs": "1"},
                timeout=function.timeout_s,
            )
        except httpx.TimeoutException:
            return _outcome(Status.TIMEOUT, started_at, t0, error=f"timed out after "
                            f"{function.timeout_s:g}s and was killed",
                            failure=Failure.TIMEOUT), False
        except httpx.TransportError as exc:
            oom = await asyncio.to_thread(self._oom_killed, container.id)
            reason = (f"out of memory: exceeded its {function.memory_mb} MB limit" if oom
                      else f"the runtime crashed ({type(exc).__name__})")
            return _outcome(Status.FAILED, started_at, t0, error=reason,
                            failure=Failure.ERROR), False
        return self._interpret(response, started_at, t0), True

    def _interpret(self, response: httpx.Response, started_at: str, t0: float) -> RunOutcome:
        try:
            reply = response.json()
        except ValueError:
            return _outcome(Status.FAILED, started_at, t0, failure=Failure.ERROR,
                            error=f"the runtime answered HTTP {response.status_code} without JSON")
        logs, _ = capped(str(reply.get("logs", "")).encode(), self._settings.max_log_bytes)
        if response.status_code != 200:
            return _outcome(Status.FAILED, started_at, t0, logs=logs, failure=Failure.ERROR,
                            error=str(reply.get("error") or f"HTTP {response.status_code}"))
        result = reply.get("result")
        output = result.encode() if isinstance(result, str) else json.dumps(result).encode()
        output, cut = capped(output, self._settings.max_output_bytes)
        if cut:
            return _outcome(Status.FAILED, started_at, t0, logs=logs, failure=Failure.ERROR,
                            error="output exceeded the size limit and was cut")
        return _outcome(Status.SUCCEEDED, started_at, t0, output=output, logs=logs)

    # containers

    async def _start_container(self, function: FunctionSpec) -> WarmContainer:
        t0 = time.perf_counter()
        suffix = secrets.token_hex(4)
        name = f"faasflow-warm-{function.name[:40]}-{suffix}"
        socket_dir = self._socket_root / suffix  # a unix socket path is 107 bytes at most
        socket_dir.mkdir(parents=True)
        os.chown(socket_dir, 65534, 65534)
        try:
            ident = await asyncio.to_thread(self._create, function, name, socket_dir)
        except (APIError, requests.RequestException) as exc:
            shutil.rmtree(socket_dir, ignore_errors=True)
            raise RuntimeUnavailable(f"Docker Engine error starting {name}: {exc}") from exc
        container = WarmContainer(self, ident, socket_dir)
        try:
            await self._ready(container, function)
        except BaseException:
            await container.destroy()
            raise
        container.init_s = round(time.perf_counter() - t0, 6)
        log.info("pool %s: started %s in %.3fs", function.name, name, container.init_s)
        return container

    def _create(self, function: FunctionSpec, name: str, socket_dir: Path) -> str:
        api = self._docker.api
        binds = {str(socket_dir): {"bind": SOCKET_DIR_IN_CONTAINER, "mode": "rw"}}
        entrypoint: list[str] | None = None
        if function.code is None and not self._is_runtime_image(function.image_digest):
            binds[str(SHIM_DIR)] = {"bind": "/opt/faasflow", "mode": "ro"}
            entrypoint = ["python3", "/opt/faasflow/runtime.py", "--exec",
                          *self._image_command(function.image_digest)]
        options = hardening(function.memory_mb, self._settings)
        if function.network:
            options["network_mode"] = "bridge"
        config = api.create_container_config(
            function.image_digest, None, user=NOBODY, entrypoint=entrypoint,
            environment={**function.env, **self._secret_env(function),
                         "FAASFLOW_FUNCTION": function.name, "FAASFLOW_MODE": "warm",
                         "FAASFLOW_RUNTIME_SOCKET": f"{SOCKET_DIR_IN_CONTAINER}/{SOCKET_NAME}"},
            labels={"faasflow.function": function.name, "faasflow.mode": "warm",
                    "faasflow.owner": OWNER},
            host_config=api.create_host_config(binds=binds, **options),
        )
        ident = str(api.create_container_from_config(config, name=name)["Id"])
        api.start(ident)
        return ident

    def _is_runtime_image(self, image: str) -> bool:
        labels = self._docker.api.inspect_image(image)["Config"].get("Labels") or {}
        return "faasflow.runtime" in labels

    def _image_command(self, image: str) -> list[str]:
        config = self._docker.api.inspect_image(image)["Config"]
        return [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]

    async def _ready(self, container: WarmContainer, function: FunctionSpec) -> None:
        deadline = time.monotonic() + self._settings.init_timeout_s
        while not await container.healthy():
            if time.monotonic() > deadline:
                raise StartFailed(f"the runtime did not answer within "
                                  f"{self._settings.init_timeout_s:g}s of starting")
            await asyncio.sleep(0.01)
        if function.code is None:
            return
        try:
            response = await container.client.post(
                "/init", json={"value": {"code": function.code, "main": function.main,
                                         "env": {}}},
                timeout=max(0.1, deadline - time.monotonic()),
            )
        except httpx.TimeoutException:
            raise StartFailed(f"/init did not answer within "
                              f"{self._settings.init_timeout_s:g}s") from None
        if response.status_code != 200:
            try:
                reason = response.json().get("error")
            except ValueError:
                reason = response.text[:500]
            raise StartFailed(f"/init failed: {reason}")

    def _oom_killed(self, ident: str) -> bool:
        """Whether the kernel killed it for memory; waits for the container to exit first,
        since dockerd records the kill only then."""
        api = self._docker.api
        try:
            with contextlib.suppress(requests.RequestException):
                api.wait(ident, timeout=2)
            return bool(api.inspect_container(ident)["State"].get("OOMKilled"))
        except (NotFound, APIError):
            return False

    def remove_container(self, ident: str) -> None:
        remove_container(self._docker, ident)

    def _remove_orphans(self) -> None:
        """Warm containers left by a gateway or worker of this host that died."""
        host = socket.gethostname()
        for found in self._docker.api.containers(all=True,
                                                 filters={"label": "faasflow.mode=warm"}):
            owner = found["Labels"].get("faasflow.owner", "")
            owner_host, _, pid = owner.rpartition(":")
            if owner_host == host and pid.isdigit() and not _alive(int(pid)):
                log.info("removing orphaned warm container %s", found["Id"][:12])
                self.remove_container(found["Id"])


def input_value(payload: bytes, content_type: str | None) -> Any:
    """The ``value`` a runtime receives: JSON bodies as JSON, text as a string, and other
    bytes as ``{"data_base64": …}``."""
    if is_json_type(content_type):
        with contextlib.suppress(ValueError, UnicodeError):
            return strict_loads(payload)
    try:
        return payload.decode()
    except UnicodeDecodeError:
        return {"data_base64": base64.b64encode(payload).decode()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _outcome(status: Status, started_at: str, t0: float, *, output: bytes = b"",
             logs: bytes = b"", error: str | None = None,
             failure: Failure | None = None) -> RunOutcome:
    return RunOutcome(status=status, output=output, logs=logs.decode(errors="replace"),
                      started_at=started_at, finished_at=utc_now(),
                      duration_s=round(time.perf_counter() - t0, 6), error=error,
                      failure=failure)

