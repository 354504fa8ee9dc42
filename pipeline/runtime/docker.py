"""The cold runtime on the Docker Engine: one hardened container per invocation.

The classic watchdog contract: the payload on stdin, the output on stdout, logs on
stderr, exit code 0 for success. The docker SDK is blocking, so every call runs in a
worker thread; its errors become ``RuntimeUnavailable`` (the engine is down) or a
failed outcome (the function misbehaved).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import time
from contextlib import suppress
from typing import Any

import docker
import requests
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from pipeline.errors import InvalidRequest, RuntimeUnavailable, Superseded
from pipeline.records import Failure, Status, utc_now
from pipeline.runtime.base import RunOutcome, RunRequest
from pipeline.settings import RuntimeSettings

log = logging.getLogger(__name__)

NOBODY = "65534:65534"
STDOUT, STDERR = 1, 2
EXIT_KILLED = 137
KILL_GRACE_S = 10.0


def hardening(function_memory_mb: int, settings: RuntimeSettings) -> dict[str, Any]:
    """Host options every function container runs with: no network, no privileges, limits.

    (The container also runs as ``nobody``; see ``DockerRunner._run``.)
    """
    memory = f"{function_memory_mb}m"
    return {
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {"/tmp": "rw,noexec,nosuid,size=64m,mode=1777"},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "mem_limit": memory,
        "memswap_limit": memory,
        "pids_limit": settings.pids_limit,
        "nano_cpus": int(settings.cpus * 1e9),
        "log_config": {"type": "none"},
    }


class DockerRunner:
    """``Runner`` adapter for cold functions."""

    def __init__(self, settings: RuntimeSettings) -> None:
        self._settings = settings
        try:
            self._client = docker.from_env(timeout=60)
        except DockerException as exc:
            raise RuntimeUnavailable(f"Docker Engine unreachable: {exc}") from exc

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)

    async def resolve_image(self, image: str) -> str:
        return await asyncio.to_thread(self._resolve_image, image)

    def _resolve_image(self, image: str) -> str:
        try:
            return str(self._client.images.get(image).id)
        except ImageNotFound:
            raise InvalidRequest(
                f"image {image!r} is not present on this Docker Engine "
                "(images are never pulled: build it locally first)"
            ) from None
        except (APIError, requests.RequestException) as exc:
            raise RuntimeUnavailable(f"Docker Engine error: {exc}") from exc

    async def run(self, request: RunRequest) -> RunOutcome:
        return await asyncio.to_thread(self._run, request)

    def _run(self, request: RunRequest) -> RunOutcome:
        name = f"faasflow-{request.invocation_id[:13]}-{secrets.token_hex(4)}"
        try:
            api = self._client.api
            config = api.create_container_config(
                request.function.image_digest,
                None,
                user=NOBODY,
                stdin_open=True,
                environment={**request.env, "FAASFLOW_MODE": "cold"},
                labels={"faasflow.function": request.function.name,
                        "faasflow.invocation": request.invocation_id},
                host_config=api.create_host_config(
                    **hardening(request.function.memory_mb, self._settings)
                ),
            )
            config["StdinOnce"] = True  # EOF on stdin once our attached stream closes
            container = api.create_container_from_config(config, name=name)
        except ImageNotFound:
            return _failure(f"image {request.function.image} ({request.function.image_digest}) "
                            "is no longer present")
        except (APIError, requests.RequestException) as exc:
            raise RuntimeUnavailable(f"Docker Engine error creating {name}: {exc}") from exc
        try:
            # Created first, then earlier runs of the same invocation are stopped: a run
            # killed that way finds this container and knows it was superseded.
            self._remove_earlier_runs(request.invocation_id, container["Id"])
            return self._start_and_wait(container["Id"], request)
        finally:
            remove_container(self._client, container["Id"])

    def _runs_of(self, invocation_id: str, besides: str) -> list[str]:
        found = self._client.api.containers(
            all=True, quiet=True, filters={"label": f"faasflow.invocation={invocation_id}"}
        )
        return [c["Id"] for c in found if c["Id"] != besides]

    def _remove_earlier_runs(self, invocation_id: str, current: str) -> None:
        """Runs left by a worker that died mid-invocation, or that lost its partition."""
        for ident in self._runs_of(invocation_id, besides=current):
            log.warning("removing earlier run %s of invocation %s", ident[:12], invocation_id)
            remove_container(self._client, ident)

    def _start_and_wait(self, ident: str, request: RunRequest) -> RunOutcome:
        api = self._client.api
        started_at, t0 = utc_now(), time.perf_counter()
        try:
            # Output is read from an attached stream, not from the log driver: the
            # json-file driver is not binary-safe, and no log driver means no disk writes.
            output_stream = api.attach_socket(ident, params={"stdout": 1, "stderr": 1,
                                                             "stream": 1})
            stdin = api.attach_socket(ident, params={"stdin": 1, "stream": 1})
            api.start(ident)
            _write_stdin(stdin, request.payload)
        except (APIError, requests.RequestException) as exc:
            raise RuntimeUnavailable(f"Docker Engine error starting {ident[:12]}: {exc}") from exc
        capture = _Capture(self._settings.max_output_bytes, self._settings.max_log_bytes)
        timed_out = not capture.read(output_stream, t0 + request.function.timeout_s)
        if timed_out:
            self._kill(ident)
            capture.read(output_stream, time.perf_counter() + KILL_GRACE_S)
        _close(output_stream)
        exit_code = int(api.wait(ident, timeout=KILL_GRACE_S)["StatusCode"])
        duration = time.perf_counter() - t0
        oom = bool(api.inspect_container(ident)["State"].get("OOMKilled"))
        if exit_code == EXIT_KILLED and not (timed_out or oom) and self._runs_of(
            request.invocation_id, besides=ident
        ):
            raise Superseded(f"invocation {request.invocation_id} was taken over by another run")
        status, failure, error = _verdict(exit_code, timed_out, oom, capture.output_cut,
                                          request)
        return RunOutcome(
            status=status, output=bytes(capture.output),
            logs=bytes(capture.logs).decode(errors="replace"),
            started_at=started_at, finished_at=utc_now(), duration_s=round(duration, 6),
            exit_code=None if timed_out else exit_code, error=error, failure=failure,
        )

    def _kill(self, ident: str) -> None:
        with suppress(NotFound, APIError):  # it exited on its own meanwhile
            self._client.api.kill(ident)


def remove_container(client: docker.DockerClient, ident: str) -> None:
    """Force-remove a container; one already gone is fine, an engine error is logged."""
    try:
        client.api.remove_container(ident, force=True)
    except NotFound:
        pass
    except (APIError, requests.RequestException) as exc:
        log.warning("could not remove container %s: %s", ident[:12], exc)


class _Capture:
    """Demultiplexes a container's attached stdout/stderr, keeping at most a cap of each
    and draining the rest, so that a chatty function never blocks on a full pipe."""

    def __init__(self, output_limit: int, log_limit: int) -> None:
        self.output = bytearray()
        self.logs = bytearray()
        self.output_cut = False
        self._limits = {STDOUT: output_limit, STDERR: log_limit}

    def read(self, stream: Any, deadline: float) -> bool:
        """Read until the container closes its streams (True) or ``deadline`` passes."""
        raw: socket.socket = stream._sock
        try:
            while True:
                raw.settimeout(max(deadline - time.perf_counter(), 0.001))
                header = _recv_exactly(raw, 8)
                if header is None:
                    return True
                payload = _recv_exactly(raw, int.from_bytes(header[4:8], "big"))
                if payload is None:
                    return True
                self._keep(header[0], payload)
        except TimeoutError:
            return False

    def _keep(self, kind: int, payload: bytes) -> None:
        buffer = self.output if kind == STDOUT else self.logs
        room = self._limits.get(kind, 0) - len(buffer)
        if kind == STDOUT and len(payload) > room:
            self.output_cut = True
        if room > 0:
            buffer += payload[:room]


def _recv_exactly(raw: socket.socket, size: int) -> bytes | None:
    """``size`` bytes, or None at the end of the stream."""
    chunks = bytearray()
    while len(chunks) < size:
        chunk = raw.recv(min(size - len(chunks), 1 << 16))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def _close(stream: Any) -> None:
    """Close an attach stream and the socket under it (closing the wrapper alone leaves the
    socket to the garbage collector)."""
    stream._sock.close()
    stream.close()


def _write_stdin(stdin: Any, payload: bytes) -> None:
    raw: socket.socket = stdin._sock
    try:
        if payload:
            raw.sendall(payload)
        raw.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the function exited without reading all of its input; that is its right
    finally:
        _close(stdin)


def _verdict(
    exit_code: int | None, timed_out: bool, oom: bool, output_cut: bool, request: RunRequest
) -> tuple[Status, Failure | None, str | None]:
    function = request.function
    if timed_out:
        return (Status.TIMEOUT, Failure.TIMEOUT,
                f"timed out after {function.timeout_s:g}s and was killed")
    if oom:
        return (Status.FAILED, Failure.ERROR,
                f"out of memory: exceeded its {function.memory_mb} MB limit")
    if exit_code != 0:
        return Status.FAILED, Failure.ERROR, f"exited with code {exit_code}"
    if output_cut:
        return Status.FAILED, Failure.ERROR, "output exceeded the size limit and was cut"
    return Status.SUCCEEDED, None, None


def _failure(reason: str) -> RunOutcome:
    now = utc_now()
    return RunOutcome(status=Status.FAILED, output=b"", logs="", started_at=now,
                      finished_at=now, duration_s=0.0, error=reason, failure=Failure.START)
