"""Warm containers: starting one (its socket directory, the container, the runtime ready
and its code sent), removing it, and removing those a dead process left behind.

Every gateway or worker process is an *instance* (a random id) with a directory of its own
under the socket root (``runtime.socket_dir``, by default ``<state_dir>/run/warm``; the
layout is in ``pipeline.runtime.sockets``). Each warm container gets a directory there,
bind-mounted read-write at /run/faasflow, where its runtime listens on ``runtime.sock`` and
this process connects. The engine resolves a bind's source on its own host, so the source is
the directory's host path (``pipeline.runtime.hostpaths``): the same path when faasflow runs
beside dockerd; when it runs in a container (a Swarm worker talking to its node's engine),
the socket root must be a volume — a tmpfs, shared by the node's faasflow processes — and
the path is mapped through it. The Python runtime that exec mode needs is copied there too,
bound read-only at /opt/faasflow: a path of this process's image means nothing to the engine.

The directory belongs to the function's user (65534) only until its runtime answers the
health check; then it is handed back to root (0755) and emptied but for the socket: the
function can create nothing there any more, onto the host's disk (root still connects to the
socket), and code sent with ``POST /init`` runs after that. (Code that ran before — a
handler baked into an image, at load — could hold a file open and grow it once unlinked: a
socket root on a sized tmpfs bounds even that.)

Containers carry the labels of their function, of their instance (``faasflow.owner``) and of
their socket root's host path (``faasflow.sockets``). An instance holds an flock on
``<root>/<instance>.lock`` for its whole life: it cannot outlive its process, whatever kills
it, and it means the same in every container sharing the volume (a pid or a hostname of a
container does not). An instance whose lock is missing or free is dead: the next process on
the same socket root removes its containers and its directory.

What runs inside depends on the function:
- a code function (``runtime`` + ``code``): the language's runtime image, sent the source
  once with ``POST /init``;
- an image built from a runtime image (label ``faasflow.runtime``): its own entrypoint,
  which loads the handler baked into it;
- any other image with python3: its own command, run per request by the Python runtime's
  exec mode (the classic watchdog's fork-per-request);
- an image built with an Fn FDK (``contract: fn``): its own entrypoint, told where to listen
  by ``FN_LISTENER`` (``pipeline.runtime.fn``). It is ready once its socket appears and
  accepts a connection (an FDK serves no ``/health``); the directory is handed back with
  the FDK's socket in place of its symlink.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import shutil
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pipeline.records import dumps
from pipeline.runtime import fn
from pipeline.runtime.docker import NOBODY, hardening
from pipeline.runtime.engine import Engine, Missing, Refused
from pipeline.runtime.sockets import ID_BYTES, INSTANCE, SOCKET_NAME, SocketRoot, hand_back
from pipeline.runtime.wire import Broken, Reply, RuntimeConnection, Unreached
from pipeline.settings import RuntimeSettings
from pipeline.specs import Contract, FunctionSpec

log = logging.getLogger(__name__)

SOCKET_DIR_IN_CONTAINER = "/run/faasflow"
SHIM_IN_CONTAINER = "/opt/faasflow"
HEALTH_TIMEOUT_S = 1.0
EXITED_CHECK_S = 0.25  # how often a start looks whether an FDK's container already ended


class StartFailed(Exception):
    """A warm container did not come up or refused its code; the reason is the user's."""


class WarmContainer:
    """One running runtime container, its socket directory, and the connection that
    reaches it (``wire``: a warm call is the executor's hottest path)."""

    def __init__(self, engine: Engine, ident: str, directory: Path, *,
                 exec_mode: bool, contract: Contract = Contract.FAASFLOW) -> None:
        self._engine = engine
        self.id = ident
        self.directory = directory
        self.exec_mode = exec_mode
        self.contract = contract
        self.init_s = 0.0
        self._connection = RuntimeConnection(str(directory / SOCKET_NAME))

    async def post(self, path: str, body: Any, timeout_s: float,
                   headers: Mapping[str, str] | None = None) -> tuple[int, bytes]:
        """The status and body the runtime answered; ``Unreached``, ``TimeoutError`` (after
        ``timeout_s``) or ``Broken`` when it did not."""
        return await self._connection.request(
            "POST", path, dumps(body), timeout_s,
            {"Content-Type": "application/json", **(headers or {})})

    async def exchange(self, path: str, body: bytes, timeout_s: float,
                       headers: Mapping[str, str]) -> Reply:
        """``POST`` raw ``body``; the whole reply, headers too (errors as ``post``'s)."""
        return await self._connection.exchange("POST", path, body, timeout_s, headers)

    async def healthy(self) -> bool:
        if self.contract is Contract.FN:
            return await self.accepts()
        try:
            status, _ = await self._connection.request("GET", "/health", b"", HEALTH_TIMEOUT_S)
        except (Unreached, Broken, TimeoutError):
            return False
        return status == 200

    async def accepts(self) -> bool:
        """Whether the socket accepts a connection: all an FDK can be asked."""
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_S):
                _, writer = await asyncio.open_unix_connection(
                    str(self.directory / SOCKET_NAME))
        except (OSError, TimeoutError):
            return False
        writer.close()
        return True

    async def reconnect(self) -> None:
        """Drop the connections opened so far: the next call connects anew."""
        await self._connection.aclose()

    async def destroy(self) -> None:
        await self._connection.aclose()
        await asyncio.to_thread(_discard, self._engine, self.id, self.directory)


def _discard(engine: Engine, ident: str | None, directory: Path | None) -> None:
    if ident is not None:
        engine.remove_container(ident)
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


class Containers:
    """Starts the warm containers of every pool of one runner, their sockets under
    ``socket_dir``."""

    def __init__(self, settings: RuntimeSettings,
                 secret_env: Callable[[FunctionSpec], Mapping[str, str]],
                 engine: Engine, socket_dir: Path) -> None:
        self._settings = settings
        self._secret_env = secret_env
        self._engine = engine
        self._root = SocketRoot(socket_dir, engine)

    async def start(self, function: FunctionSpec) -> WarmContainer:
        t0 = time.perf_counter()
        suffix = secrets.token_hex(ID_BYTES)
        name = f"faasflow-warm-{function.name[:40]}-{self._root.instance}-{suffix}"
        ident: str | None = None
        directory: Path | None = None
        try:
            labels = {"faasflow.function": function.name, "faasflow.mode": "warm",
                      "faasflow.owner": self._root.instance,
                      "faasflow.sockets": str(await asyncio.to_thread(self._root.open))}
            directory = await asyncio.to_thread(self._root.directory, suffix)
            command = await asyncio.to_thread(self._exec_command, function)
            ident = await asyncio.to_thread(self._create, function, name, directory, labels,
                                            command)
        except BaseException as exc:
            await asyncio.to_thread(_discard, self._engine, ident, directory)
            if isinstance(exc, Missing):
                raise StartFailed(f"image {function.image} ({function.image_digest}) "
                                  "is no longer present") from None
            if isinstance(exc, Refused):
                raise StartFailed(f"its container did not start: {exc}") from None
            raise
        container = WarmContainer(self._engine, ident, directory, exec_mode=command is not None,
                                  contract=function.contract)
        try:
            if function.contract is Contract.FN:
                await self._fdk_ready(container)
            else:
                await self._ready(container, function)
        except BaseException:
            await container.destroy()
            raise
        container.init_s = round(time.perf_counter() - t0, 6)
        log.info("pool %s: started %s in %.3fs", function.name, name, container.init_s)
        return container

    def _exec_command(self, function: FunctionSpec) -> list[str] | None:
        """The command the Python runtime's exec mode runs per request: the function's own
        (``command``), or else the image's, unless it is a code function or an image built
        from a runtime image."""
        if function.code is not None or function.contract is Contract.FN:
            return None
        if function.command is not None:
            return list(function.command)
        config = self._engine.image_config(function.image_digest)
        if "faasflow.runtime" in (config.get("Labels") or {}):
            return None
        return [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]

    def _create(self, function: FunctionSpec, name: str, directory: Path,
                labels: Mapping[str, str], command: list[str] | None) -> str:
        binds = {self._root.host(directory): {"bind": SOCKET_DIR_IN_CONTAINER, "mode": "rw"}}
        entrypoint: list[str] | None = None
        socket = f"{SOCKET_DIR_IN_CONTAINER}/{SOCKET_NAME}"
        contract_env: dict[str, str] = {}
        if function.contract is Contract.FN:
            contract_env = fn.environment(function, socket)
            if function.command is not None:
                entrypoint = list(function.command)
        elif command is not None:
            binds[self._root.host(self._root.shim)] = {"bind": SHIM_IN_CONTAINER, "mode": "ro"}
            entrypoint = ["python3", f"{SHIM_IN_CONTAINER}/runtime.py", "--exec", *command]
        options = hardening(function.memory_mb, self._settings)
        if function.network:
            options["network_mode"] = "bridge"
        ident = self._engine.create(
            function.image_digest, name, user=NOBODY, entrypoint=entrypoint,
            environment={**function.env, **self._secret_env(function),
                         "FAASFLOW_FUNCTION": function.name, "FAASFLOW_MODE": "warm",
                         "FAASFLOW_RUNTIME_SOCKET": socket, **contract_env},
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
        if not await asyncio.to_thread(hand_back, container.directory):
            raise StartFailed(f"{SOCKET_DIR_IN_CONTAINER}/{SOCKET_NAME} is not its "
                              "runtime's socket any more")
        await container.reconnect()  # the checked socket, not whatever answered before
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

    async def _fdk_ready(self, container: WarmContainer) -> None:
        """An FDK is ready once ``FN_LISTENER``'s path exists (it links it to its socket
        after it listens) and, the directory handed back, its socket accepts. A container
        that ended meanwhile fails the start at once."""
        deadline = time.monotonic() + self._settings.init_timeout_s
        link = container.directory / SOCKET_NAME
        next_look = time.monotonic() + EXITED_CHECK_S
        while not link.is_symlink() and not link.is_socket():
            now = time.monotonic()
            if now > deadline:
                raise StartFailed(
                    f"the Fn FDK did not listen on FN_LISTENER (unix:{SOCKET_DIR_IN_CONTAINER}/"
                    f"{SOCKET_NAME}) within {self._settings.init_timeout_s:g}s of starting")
            if now > next_look:
                await self._still_running(container)
                next_look = now + EXITED_CHECK_S
            await asyncio.sleep(0.01)
        if not await asyncio.to_thread(hand_back, container.directory, adopt_link=True):
            raise StartFailed(f"FN_LISTENER ({SOCKET_DIR_IN_CONTAINER}/{SOCKET_NAME}) is not "
                              "a link to the FDK's socket beside it")
        while not await container.accepts():
            if time.monotonic() > deadline:
                raise StartFailed("the Fn FDK's socket did not accept a connection within "
                                  f"{self._settings.init_timeout_s:g}s of starting")
            await self._still_running(container)
            await asyncio.sleep(0.01)

    async def _still_running(self, container: WarmContainer) -> None:
        ended = await asyncio.to_thread(self._engine.ended, container.id, 0.001)
        if ended is None:
            raise StartFailed("its container was removed while it started")
        if ended.exit_code is not None:
            raise StartFailed(f"its process exited with code {ended.exit_code} before it "
                              f"listened on FN_LISTENER"
                              + (" (out of memory)" if ended.oom_killed else ""))

    def running(self) -> Counter[str]:
        """The warm containers running on this socket root, by function: those of every
        faasflow process of this node that shares it (its workers and gateway processes).
        Blocks."""
        sockets = str(self._root.open())
        return Counter((found.get("Labels") or {}).get("faasflow.function", "")
                       for found in self._engine.containers({"faasflow.mode": "warm",
                                                             "faasflow.sockets": sockets})
                       if found.get("State") == "running")

    def remove_orphans(self) -> None:
        """The warm containers of every dead instance on this socket root (labelled with its
        host path: another root is another checkout's or another node's to judge), then their
        directories and locks. Blocks."""
        sockets = str(self._root.open())
        left: dict[str, list[str]] = {}
        for found in self._engine.containers({"faasflow.mode": "warm",
                                              "faasflow.sockets": sockets}):
            owner = (found.get("Labels") or {}).get("faasflow.owner", "")
            if INSTANCE.fullmatch(owner) and owner != self._root.instance:
                left.setdefault(owner, []).append(str(found["Id"]))
        for owner in sorted(self._root.others() | set(left)):
            with self._root.if_dead(owner) as dead:
                for ident in left.get(owner, []) if dead else []:
                    log.info("removing warm container %s of dead instance %s", ident[:12],
                             owner)
                    self._engine.remove_container(ident)

    def close(self) -> None:
        """This instance's directory and lock (its containers are removed by then). Blocks."""
        self._root.close()
