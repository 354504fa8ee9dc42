"""The cold runtime on the Docker Engine: one hardened container per invocation.

The classic watchdog contract: the payload on stdin, the output on stdout, logs on
stderr, exit code 0 for success. The engine is blocking, so every call runs in a worker
thread. Until the container starts, an engine failure is ``RuntimeUnavailable`` (nothing
ran: the same request may be tried again); once it started, losing the engine or the
container is an outcome with ``failure=UNAVAILABLE`` (it may have run: the function's
retry policy decides).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import time
from contextlib import suppress
from typing import Any

from pipeline.errors import InvalidRequest, RuntimeUnavailable, Superseded
from pipeline.records import Failure, Status, utc_now
from pipeline.runtime.base import RunOutcome, RunRequest
from pipeline.runtime.engine import Attached, Ended, Engine, Missing, Refused
from pipeline.runtime.verdicts import EXIT_KILLED, cold_verdict
from pipeline.settings import RuntimeSettings

log = logging.getLogger(__name__)

NOBODY = "65534:65534"
STDOUT, STDERR = 1, 2
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
    """Runs cold functions (for ``Runtimes``) on the engine it is given."""

    def __init__(self, settings: RuntimeSettings, engine: Engine) -> None:
        self._settings = settings
        self._engine = engine

    async def resolve_image(self, image: str) -> str:
        return await asyncio.to_thread(self._resolve_image, image)

    def _resolve_image(self, image: str) -> str:
        try:
            found = self._engine.image_id(image)
        except Refused as exc:
            raise InvalidRequest(f"image {image!r}: {exc}") from None
        if found is None:
            raise InvalidRequest(
                f"image {image!r} is not present on this Docker Engine "
                "(images are never pulled: build it locally first)"
            )
        return found

    async def image_env(self, image: str) -> dict[str, str]:
        await self.resolve_image(image)  # InvalidRequest, saying why, when it is not there
        try:
            config = await asyncio.to_thread(self._engine.image_config, image)
        except (Missing, Refused) as exc:
            raise InvalidRequest(f"image {image!r}: {exc}") from None
        pairs = (entry.partition("=") for entry in config.get("Env") or ())
        return {name: value for name, _, value in pairs}

    async def run(self, request: RunRequest) -> RunOutcome:
        return await asyncio.to_thread(self._run, request)

    def _run(self, request: RunRequest) -> RunOutcome:
        name = f"faasflow-{request.invocation_id[:13]}-{secrets.token_hex(4)}"
        function = request.function
        try:
            ident = self._engine.create(
                function.image_digest, name, user=NOBODY,
                environment={**request.env, "FAASFLOW_MODE": "cold"},
                labels={"faasflow.function": function.name,
                        "faasflow.invocation": request.invocation_id},
                host=hardening(function.memory_mb, self._settings), stdin=True,
                entrypoint=list(function.command) if function.command is not None else None,
            )
        except Missing:
            return _not_started(f"image {function.image} ({function.image_digest}) "
                                "is no longer present")
        except Refused as exc:
            return _not_started(f"the Docker Engine refused its container: {exc}")
        try:
            # Created first, then earlier runs of the same invocation are stopped: a run
            # killed that way finds this container and knows it was superseded.
            self._remove_earlier_runs(request.invocation_id, ident)
            return self._start_and_wait(ident, request)
        finally:
            self._engine.remove_container(ident)

    def _runs_of(self, invocation_id: str, besides: str) -> list[str]:
        found = self._engine.containers({"faasflow.invocation": invocation_id})
        return [c["Id"] for c in found if c["Id"] != besides]

    def _remove_earlier_runs(self, invocation_id: str, current: str) -> None:
        """Runs left by a worker that died mid-invocation, or that lost its partition."""
        for ident in self._runs_of(invocation_id, besides=current):
            log.warning("removing earlier run %s of invocation %s", ident[:12], invocation_id)
            self._engine.remove_container(ident)

    def _start_and_wait(self, ident: str, request: RunRequest) -> RunOutcome:
        started_at, t0 = utc_now(), time.perf_counter()
        streams: list[Attached] = []
        try:
            # Output is read from an attached stream, not from the log driver: the json-file
            # driver is not binary-safe, and no log driver means no disk writes.
            streams.append(output_stream := self._engine.attach(ident, stdin=False))
            streams.append(stdin := self._engine.attach(ident, stdin=True))
            self._engine.start(ident)
        except BaseException as exc:
            _close(streams)
            if isinstance(exc, Refused):  # such as an image whose command does not exist
                return _not_started(f"its container did not start: {exc}")
            if isinstance(exc, Missing):
                raise RuntimeUnavailable(f"container {ident[:12]} vanished before it started"
                                         ) from None
            raise
        _write_stdin(stdin, request.payload)
        capture = _Capture(self._settings.max_output_bytes, self._settings.max_log_bytes)
        deadline = t0 + request.function.timeout_s
        try:
            timed_out = not capture.read(output_stream, deadline)
        finally:
            # Closed before a kill: the engine answers a kill once the container has
            # stopped, and it stops only once its output is taken. A function still
            # printing at its deadline filled a stream nobody read, and the kill waited for
            # the engine's timeout (60 s, for a 0.4 s deadline). What it printed after its
            # deadline is not kept.
            output_stream.close()
        if timed_out:
            self._kill(ident)
        lost = None
        try:
            ended = self._engine.ended(ident, KILL_GRACE_S if timed_out else
                                       max(deadline - time.perf_counter(), 1.0),
                                       killed_here=timed_out)
            if ended is not None and ended.exit_code is None and not timed_out:
                timed_out = True  # it closed its output but ran on, past its deadline
                self._kill(ident)
                ended = self._engine.ended(ident, KILL_GRACE_S, killed_here=True)
            if self._superseded(ended, timed_out) and self._runs_of(request.invocation_id,
                                                                    besides=ident):
                raise Superseded(
                    f"invocation {request.invocation_id} was taken over by another run")
        except RuntimeUnavailable as exc:
            ended, lost = None, f"the Docker Engine was lost while it ran ({exc})"
        verdict = cold_verdict(ended, timed_out, capture.output_cut, request.function, lost)
        return RunOutcome(
            status=verdict.status, output=bytes(capture.output),
            logs=bytes(capture.logs).decode(errors="replace"), started_at=started_at,
            finished_at=utc_now(), duration_s=round(time.perf_counter() - t0, 6),
            exit_code=None if timed_out or ended is None else ended.exit_code,
            error=verdict.error, failure=verdict.failure,
        )

    def _kill(self, ident: str) -> None:
        with suppress(RuntimeUnavailable):  # how it ended is asked next, and found lost
            self._engine.kill(ident)

    @staticmethod
    def _superseded(ended: Ended | None, timed_out: bool) -> bool:
        """Whether it may have been removed or killed by a newer run of its invocation."""
        if timed_out:
            return False
        return ended is None or (ended.exit_code == EXIT_KILLED and not ended.oom_killed)


class _Capture:
    """Demultiplexes a container's attached stdout/stderr, keeping at most a cap of each
    and draining the rest, so that a chatty function never blocks on a full pipe."""

    def __init__(self, output_limit: int, log_limit: int) -> None:
        self.output = bytearray()
        self.logs = bytearray()
        self.output_cut = False
        self._limits = {STDOUT: output_limit, STDERR: log_limit}

    def read(self, stream: Attached, deadline: float) -> bool:
        """Read until the streams close (True) or ``deadline`` passes (False), also while
        output keeps coming (a socket's timeout only bounds a wait for it). A broken stream
        counts as closed: how the container ended is asked of the engine next."""
        raw = stream.sock
        try:
            while True:
                left = deadline - time.perf_counter()
                if left <= 0:
                    return False
                raw.settimeout(left)
                header = _recv_exactly(raw, 8)
                if header is None:
                    return True
                payload = _recv_exactly(raw, int.from_bytes(header[4:8], "big"))
                if payload is None:
                    return True
                self._keep(header[0], payload)
        except TimeoutError:
            return False
        except OSError as exc:
            log.warning("the attached stream broke: %s", str(exc))
            return True

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


def _close(streams: list[Attached]) -> None:
    for stream in streams:
        stream.close()


def _write_stdin(stdin: Attached, payload: bytes) -> None:
    try:
        if payload:
            stdin.sock.sendall(payload)
        stdin.sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the function exited without reading all of its input; that is its right
    finally:
        stdin.close()


def _not_started(reason: str) -> RunOutcome:
    now = utc_now()
    return RunOutcome(status=Status.FAILED, output=b"", logs="", started_at=now,
                      finished_at=now, duration_s=0.0, error=reason, failure=Failure.START)
