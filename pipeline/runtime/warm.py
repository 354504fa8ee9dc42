"""The warm runtime: long-lived containers running an OpenWhisk-protocol runtime
(``functions/runtime``), reached over a unix socket, as Fn's hot functions are — so a warm
container needs no network at all.

The socket lives on a volume of its own: a tmpfs of 256 KiB that the engine mounts at
/run/faasflow in the container and at its Mountpoint on this host, where the pool connects
(faasflow runs as root beside dockerd). Whatever the function writes there is bounded and
never reaches the host's disk; removing the container, then the volume, unmounts it.

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
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from pipeline.errors import RuntimeUnavailable
from pipeline.records import Failure, FunctionSpec, Language, Status, utc_now
from pipeline.runtime.base import RunOutcome, RunRequest, capped
from pipeline.runtime.docker import NOBODY, hardening
from pipeline.runtime.engine import Engine, Missing, Refused
from pipeline.runtime.pool import Capacity, FunctionPool, PoolRetired
from pipeline.runtime.shim import SHIM_DIR, decode_input, encode_output
from pipeline.runtime.verdicts import Verdict, broken_call
from pipeline.settings import Settings

log = logging.getLogger(__name__)

RUNTIME_IMAGES = {Language.PYTHON: "faasflow/runtime-python:latest",
                  Language.NODE: "faasflow/runtime-node:latest"}
SOCKET_DIR_IN_CONTAINER = "/run/faasflow"
SOCKET_NAME = "runtime.sock"
SOCKET_VOLUME = {"type": "tmpfs", "device": "tmpfs",
                 "o": "size=256k,nr_inodes=64,uid=65534,gid=65534,mode=0700"}
MAX_SOCKET_PATH = 107  # bytes in sun_path, less its terminating NUL
OWNER = f"{socket.gethostname()}:{os.getpid()}"
HEALTH_TIMEOUT_S = 1.0
EXIT_WAIT_S = 2.0  # for a container whose runtime broke the connection to be seen exited
EXEC_CONTENT_TYPE = "application/octet-stream"  # an exec-mode command reads bytes


class StartFailed(Exception):
    """A warm container did not come up or refused its code; the reason is the user's."""


def socket_path(mountpoint: str) -> Path:
    """Where the host reaches a container's socket on its volume."""
    path = Path(mountpoint) / SOCKET_NAME
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise RuntimeUnavailable(f"{path} is too long for a unix socket: give the Docker "
                                 "Engine a shorter data-root")
    return path


class WarmContainer:
    """One running runtime container, its socket volume, and the HTTP client that reaches it."""

    def __init__(self, engine: Engine, ident: str, volume: str, socket_file: Path, *,
                 exec_mode: bool) -> None:
        self._engine = engine
        self.id = ident
        self.volume = volume
        self.exec_mode = exec_mode
        self.init_s = 0.0
        self.client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(socket_file)), base_url="http://runtime")

    async def healthy(self) -> bool:
        try:
            response = await self.client.get("/health", timeout=HEALTH_TIMEOUT_S)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def destroy(self) -> None:
        await self.client.aclose()
        await asyncio.to_thread(_discard, self._engine, self.id, self.volume)


def _discard(engine: Engine, ident: str | None, volume: str) -> None:
    """The container first: a volume in use cannot be removed."""
    if ident is not None:
        engine.remove_container(ident)
    engine.remove_volume(volume)


class WarmRunner:
    """``Runner`` adapter for warm functions: one ``FunctionPool`` per deployed version."""

    def __init__(self, settings: Settings,
                 secret_env: Callable[[FunctionSpec], Mapping[str, str]],
                 engine: Engine) -> None:
        self._settings = settings.runtime
        self._secret_env = secret_env
        self._engine = engine
        self._capacity = Capacity(settings.runtime.max_warm_containers)
        self._pools: dict[str, tuple[FunctionSpec, FunctionPool[WarmContainer]]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._maintainer: asyncio.Task[None] | None = None

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
            log.warning("warm pool work failed: %s", str(task.exception()))

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(self._settings.maintain_interval_s)
            for _, pool in list(self._pools.values()):
                try:
                    await pool.maintain()
                except (StartFailed, RuntimeUnavailable) as exc:
                    log.warning("pool %s: %s", pool.name, str(exc))

    # one call

    async def run(self, request: RunRequest) -> RunOutcome:
        started_at, t0 = utc_now(), time.perf_counter()
        while True:
            pool = self.pool(request.function)
            try:
                container, cold = await pool.acquire()
            except PoolRetired:
                continue
            except StartFailed as exc:
                return _outcome(Status.FAILED, started_at, t0, error=str(exc),
                                failure=Failure.START)
            healthy = False
            try:
                outcome, healthy = await self._call(container, request, started_at, t0)
            finally:
                await pool.release(container, healthy=healthy)
            if outcome is None and not cold:
                continue  # an idle container that died meanwhile: the call never reached it
            if outcome is None:
                outcome = _outcome(Status.FAILED, started_at, t0, failure=Failure.UNAVAILABLE,
                                   error="its new container stopped answering")
            return replace(outcome, cold_start=cold, init_s=container.init_s if cold else None)

    async def _call(self, container: WarmContainer, request: RunRequest, started_at: str,
                    t0: float) -> tuple[RunOutcome | None, bool]:
        """The outcome (None when the call could not reach the container), and whether the
        container is fit for the next call (a timed-out or broken one is replaced)."""
        function = request.function
        content_type = EXEC_CONTENT_TYPE if container.exec_mode else request.content_type
        body = {"value": decode_input(request.payload, content_type),
                "activation_id": request.invocation_id,
                "deadline": int((time.time() + function.timeout_s) * 1000),
                "env": dict(request.env)}  # the per-call CE_* variables, as cold calls get
        try:
            response = await container.client.post(
                "/run", json=body, headers={"X-Faasflow-Logs": "1"},
                timeout=function.timeout_s,
            )
        except httpx.ConnectError:
            return None, False
        except httpx.TimeoutException:
            return _outcome(Status.TIMEOUT, started_at, t0, error=f"timed out after "
                            f"{function.timeout_s:g}s and was killed",
                            failure=Failure.TIMEOUT), False
        except httpx.TransportError as exc:
            verdict = await self._broken(container, function)
            log.warning("pool %s: %s (%s)", function.name, verdict.error, type(exc).__name__)
            return _outcome(verdict.status, started_at, t0, error=verdict.error,
                            failure=verdict.failure), False
        return self._interpret(response, started_at, t0), True

    async def _broken(self, container: WarmContainer, function: FunctionSpec) -> Verdict:
        try:
            ended = await asyncio.to_thread(self._engine.ended, container.id, EXIT_WAIT_S)
        except RuntimeUnavailable as exc:
            return Verdict(Status.FAILED, Failure.UNAVAILABLE,
                           f"the runtime and the Docker Engine were lost ({exc})")
        return broken_call(ended, function.memory_mb)

    def _interpret(self, response: httpx.Response, started_at: str, t0: float) -> RunOutcome:
        try:
            reply = response.json()
            logs, _ = capped(str(reply.get("logs", "")).encode(),
                             self._settings.max_log_bytes)
        except (ValueError, AttributeError):
            return _outcome(Status.FAILED, started_at, t0, failure=Failure.ERROR,
                            error=f"the runtime answered HTTP {response.status_code} without "
                                  "a JSON object")
        if response.status_code != 200:
            return _outcome(Status.FAILED, started_at, t0, logs=logs, failure=Failure.ERROR,
                            error=str(reply.get("error") or f"HTTP {response.status_code}"))
        try:
            output, cut = capped(_output(reply), self._settings.max_output_bytes)
        except ValueError as exc:  # binascii.Error and UnicodeError are ValueErrors
            return _outcome(Status.FAILED, started_at, t0, logs=logs, failure=Failure.ERROR,
                            error=f"the runtime answered a malformed output: {exc}")
        if cut:
            return _outcome(Status.FAILED, started_at, t0, logs=logs, failure=Failure.ERROR,
                            error="output exceeded the size limit and was cut")
        return _outcome(Status.SUCCEEDED, started_at, t0, output=output, logs=logs)

    # containers

    async def _start_container(self, function: FunctionSpec) -> WarmContainer:
        t0 = time.perf_counter()
        suffix = secrets.token_hex(6)
        labels = {"faasflow.function": function.name, "faasflow.mode": "warm",
                  "faasflow.owner": OWNER}
        volume = f"faasflow-sock-{suffix}"
        name = f"faasflow-warm-{function.name[:40]}-{suffix}"
        ident: str | None = None
        try:
            socket_file = socket_path(await asyncio.to_thread(
                self._engine.create_volume, volume, labels, SOCKET_VOLUME))
            command = await asyncio.to_thread(self._exec_command, function)
            ident = await asyncio.to_thread(self._create, function, name, volume, labels,
                                            command)
        except BaseException as exc:
            await asyncio.to_thread(_discard, self._engine, ident, volume)
            if isinstance(exc, Missing):
                raise StartFailed(f"image {function.image} ({function.image_digest}) "
                                  "is no longer present") from None
            if isinstance(exc, Refused):
                raise StartFailed(f"its container did not start: {exc}") from None
            raise
        container = WarmContainer(self._engine, ident, volume, socket_file,
                                  exec_mode=command is not None)
        try:
            await self._ready(container, function)
        except BaseException:
            await container.destroy()
            raise
        container.init_s = round(time.perf_counter() - t0, 6)
        log.info("pool %s: started %s in %.3fs", function.name, name, container.init_s)
        return container

    def _exec_command(self, function: FunctionSpec) -> list[str] | None:
        """The image's own command when the Python runtime's exec mode is to run it: not a
        code function, and not an image built from a runtime image."""
        if function.code is not None:
            return None
        config = self._engine.image_config(function.image_digest)
        if "faasflow.runtime" in (config.get("Labels") or {}):
            return None
        return [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]

    def _create(self, function: FunctionSpec, name: str, volume: str,
                labels: Mapping[str, str], command: list[str] | None) -> str:
        binds = {volume: {"bind": SOCKET_DIR_IN_CONTAINER, "mode": "rw"}}
        entrypoint: list[str] | None = None
        if command is not None:
            binds[str(SHIM_DIR)] = {"bind": "/opt/faasflow", "mode": "ro"}
            entrypoint = ["python3", "/opt/faasflow/runtime.py", "--exec", *command]
        options = hardening(function.memory_mb, self._settings)
        if function.network:
            options["network_mode"] = "bridge"
        ident = self._engine.create(
            function.image_digest, name, user=NOBODY, entrypoint=entrypoint,
            environment={**function.env, **self._secret_env(function),
                         "FAASFLOW_FUNCTION": function.name, "FAASFLOW_MODE": "warm",
                         "FAASFLOW_RUNTIME_SOCKET": f"{SOCKET_DIR_IN_CONTAINER}/{SOCKET_NAME}"},
            labels=labels, host={"binds": binds, **options},
        )
        try:
            self._engine.start(ident)
        except BaseException:
            self._engine.remove_container(ident)
            raise
        return ident

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
        except httpx.TransportError as exc:
            raise StartFailed(f"/init broke the connection ({type(exc).__name__})") from None
        if response.status_code != 200:
            try:
                reason = response.json().get("error")
            except ValueError:
                reason = response.text[:500]
            raise StartFailed(f"/init failed: {reason}")

    def _remove_orphans(self) -> None:
        """Warm containers, and their socket volumes, left by a gateway or worker of this
        host that died."""
        warm = {"faasflow.mode": "warm"}
        for found in self._engine.containers(warm):
            if _orphaned(found.get("Labels") or {}):
                log.info("removing orphaned warm container %s", found["Id"][:12])
                self._engine.remove_container(found["Id"])
        for volume in self._engine.volumes(warm):
            if _orphaned(volume.get("Labels") or {}):
                log.info("removing orphaned socket volume %s", volume["Name"])
                self._engine.remove_volume(volume["Name"])


def _output(reply: dict[str, Any]) -> bytes:
    """The output a runtime answered: exactly what the same runtime writes in cold mode.
    (A runtime baked into an image before "output" answered the parsed "result".)"""
    if "output" in reply:
        return str(reply["output"]).encode()
    if "output_base64" in reply:
        return base64.b64decode(str(reply["output_base64"]), validate=True)
    result = reply.get("result")
    return result.encode() if isinstance(result, str) else encode_output(result)


def _orphaned(labels: Mapping[str, str]) -> bool:
    owner_host, _, pid = labels.get("faasflow.owner", "").rpartition(":")
    return owner_host == socket.gethostname() and pid.isdigit() and not _alive(int(pid))


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
