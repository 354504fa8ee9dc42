"""The cold runtime on the Docker Engine: one hardened container per invocation.

The classic watchdog contract: the payload on stdin, the output on stdout, logs on
stderr, exit code 0 for success. The docker SDK is blocking, so every call runs in a
worker thread; its errors become ``RuntimeUnavailable`` (the engine is down) or a
failed outcome (the function misbehaved).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from contextlib import suppress
from typing import Any

import docker
import requests
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from pipeline.errors import InvalidRequest, RuntimeUnavailable
from pipeline.records import Status, utc_now
from pipeline.runtime.base import RunOutcome, RunRequest
from pipeline.settings import RuntimeSettings

log = logging.getLogger(__name__)

NOBODY = "65534:65534"
EXIT_OOM = 137


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
        "log_config": {"type": "json-file", "config": {"max-size": "8m", "max-file": "1"}},
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
        name = f"faasflow-{request.invocation_id}"
        self._remove(name)  # left over by a worker that died mid-invocation
        try:
            api = self._client.api
            config = api.create_container_config(
                request.function.image_digest,
                None,
                user=NOBODY,
                stdin_open=True,
                environment=dict(request.env),
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
            return self._start_and_wait(container["Id"], request)
        finally:
            self._remove(container["Id"])

    def _start_and_wait(self, ident: str, request: RunRequest) -> RunOutcome:
        api = self._client.api
        started_at, t0 = utc_now(), time.perf_counter()
        try:
            stdin = api.attach_socket(ident, params={"stdin": 1, "stream": 1})
            api.start(ident)
            _write_stdin(stdin, request.payload)
        except (APIError, requests.RequestException) as exc:
            raise RuntimeUnavailable(f"Docker Engine error starting {ident[:12]}: {exc}") from exc
        timeout_s = request.function.timeout_s
        timed_out = False
        exit_code: int | None = None
        try:
            exit_code = int(api.wait(ident, timeout=timeout_s)["StatusCode"])
        except requests.exceptions.ConnectionError:
            # docker-py turns a read timeout on /wait into a ConnectionError
            timed_out = True
            self._kill(ident)
        duration = time.perf_counter() - t0
        finished_at = utc_now()
        output, output_cut = self._read(ident, stdout=True, limit=self._settings.max_output_bytes)
        logs, _ = self._read(ident, stdout=False, limit=self._settings.max_log_bytes)
        oom = bool(api.inspect_container(ident)["State"].get("OOMKilled"))
        status, error = _verdict(exit_code, timed_out, oom, output_cut, request)
        return RunOutcome(
            status=status, output=output, logs=logs.decode(errors="replace"),
            started_at=started_at, finished_at=finished_at, duration_s=round(duration, 6),
            exit_code=exit_code, error=error,
        )

    def _read(self, ident: str, *, stdout: bool, limit: int) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        stream: Iterator[bytes] = self._client.api.logs(
            ident, stdout=stdout, stderr=not stdout, stream=True, follow=False
        )
        for chunk in stream:
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                break
        data = b"".join(chunks)
        return data[:limit], size > limit

    def _kill(self, ident: str) -> None:
        with suppress(NotFound, APIError):  # it exited on its own meanwhile
            self._client.api.kill(ident)

    def _remove(self, ident: str) -> None:
        try:
            self._client.api.remove_container(ident, force=True)
        except NotFound:
            pass
        except (APIError, requests.RequestException) as exc:
            log.warning("could not remove container %s: %s", ident, exc)


def _write_stdin(stdin: Any, payload: bytes) -> None:
    raw: socket.socket = stdin._sock
    try:
        if payload:
            raw.sendall(payload)
        raw.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the function exited without reading all of its input; that is its right
    finally:
        stdin.close()


def _verdict(
    exit_code: int | None, timed_out: bool, oom: bool, output_cut: bool, request: RunRequest
) -> tuple[Status, str | None]:
    function = request.function
    if timed_out:
        return Status.TIMEOUT, f"timed out after {function.timeout_s:g}s and was killed"
    if oom:
        return Status.FAILED, f"out of memory: exceeded its {function.memory_mb} MB limit"
    if exit_code != 0:
        return Status.FAILED, f"exited with code {exit_code}"
    if output_cut:
        return Status.FAILED, "output exceeded the size limit and was cut"
    return Status.SUCCEEDED, None


def _failure(reason: str) -> RunOutcome:
    now = utc_now()
    return RunOutcome(status=Status.FAILED, output=b"", logs="", started_at=now,
                      finished_at=now, duration_s=0.0, error=reason)
