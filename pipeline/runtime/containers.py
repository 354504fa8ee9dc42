"""Warm containers: starting one (its socket volume, the container, the runtime ready and
its code sent), removing it, and removing those a dead process left behind.

The socket lives on a volume of its own: a tmpfs of 256 KiB that the engine mounts at
/run/faasflow in the container and at its Mountpoint on this host, where the pool connects
(faasflow runs as root beside dockerd). Whatever the function writes there is bounded and
never reaches the host's disk; removing the container, then the volume, unmounts it. Both
carry the labels of their function and of the process that made them (``OWNER``).

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
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pipeline.errors import RuntimeUnavailable
from pipeline.records import dumps
from pipeline.runtime.docker import NOBODY, hardening
from pipeline.runtime.engine import Engine, Missing, Refused
from pipeline.runtime.shim import SHIM_DIR
from pipeline.runtime.wire import Broken, RuntimeConnection, Unreached
from pipeline.settings import RuntimeSettings
from pipeline.specs import FunctionSpec

log = logging.getLogger(__name__)

SOCKET_DIR_IN_CONTAINER = "/run/faasflow"
SOCKET_NAME = "runtime.sock"
SOCKET_VOLUME = {"type": "tmpfs", "device": "tmpfs",
                 "o": "size=256k,nr_inodes=64,uid=65534,gid=65534,mode=0700"}
MAX_SOCKET_PATH = 107  # bytes in sun_path, less its terminating NUL
OWNER = f"{socket.gethostname()}:{os.getpid()}"
HEALTH_TIMEOUT_S = 1.0


class StartFailed(Exception):
    """A warm container did not come up or refused its code; the reason is the user's."""


def socket_path(mountpoint: str) -> Path:
    """Where the host reaches a container's socket on its volume. When it cannot — a
    data-root too long for a unix socket's path, or a process that may not enter the engine's
    volumes — that is the host's fault, not the function's: ``RuntimeUnavailable`` (nothing
    ran, and the call waits and is retried until the host is mended)."""
    path = Path(mountpoint) / SOCKET_NAME
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise RuntimeUnavailable(f"{path} is too long for a unix socket: give the Docker "
                                 "Engine a shorter data-root")
    if not os.access(mountpoint, os.X_OK):
        raise RuntimeUnavailable(f"this process may not enter {mountpoint}, where warm "
                                 "containers' sockets are: run faasflow as root beside dockerd")
    return path


class WarmContainer:
    """One running runtime container, its socket volume, and the connection that reaches
    it (``wire``: a warm call is the executor's hottest path)."""

    def __init__(self, engine: Engine, ident: str, volume: str, socket_file: Path, *,
                 exec_mode: bool) -> None:
        self._engine = engine
        self.id = ident
        self.volume = volume
        self.exec_mode = exec_mode
        self.init_s = 0.0
        self._connection = RuntimeConnection(str(socket_file))

    async def post(self, path: str, body: Any, timeout_s: float,
                   headers: Mapping[str, str] | None = None) -> tuple[int, bytes]:
        """The status and body the runtime answered; ``Unreached``, ``TimeoutError`` (after
        ``timeout_s``) or ``Broken`` when it did not."""
        return await self._connection.request(
            "POST", path, dumps(body), timeout_s,
            {"Content-Type": "application/json", **(headers or {})})

    async def healthy(self) -> bool:
        try:
            status, _ = await self._connection.request("GET", "/health", b"", HEALTH_TIMEOUT_S)
        except (Unreached, Broken, TimeoutError):
            return False
        return status == 200

    async def destroy(self) -> None:
        await self._connection.aclose()
        await asyncio.to_thread(_discard, self._engine, self.id, self.volume)


def _discard(engine: Engine, ident: str | None, volume: str) -> None:
    """The container first: a volume in use cannot be removed."""
    if ident is not None:
        engine.remove_container(ident)
    engine.remove_volume(volume)


class Containers:
    """Starts the warm containers of every pool of one runner."""

    def __init__(self, settings: RuntimeSettings,
                 secret_env: Callable[[FunctionSpec], Mapping[str, str]],
                 engine: Engine) -> None:
        self._settings = settings
        self._secret_env = secret_env
        self._engine = engine

    async def start(self, function: FunctionSpec) -> WarmContainer:
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
            status, answer = await container.post(
                "/init", {"value": {"code": function.code, "main": function.main, "env": {}}},
                timeout_s=max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            raise StartFailed(f"/init did not answer within "
                              f"{self._settings.init_timeout_s:g}s") from None
        except (Unreached, Broken) as exc:
            raise StartFailed(f"/init broke the connection ({exc})") from None
        if status != 200:
            try:
                reason = json.loads(answer).get("error")
            except (ValueError, AttributeError):
                reason = answer[:500].decode(errors="replace")
            raise StartFailed(f"/init failed: {reason}")

    def remove_orphans(self) -> None:
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
