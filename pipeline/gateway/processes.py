"""Several gateway processes sharing one port, and the parent that keeps them running.

One Python process serves HTTP on one core; on a machine with more, the gateway runs
``processes`` of them. Each is a whole gateway (its own producer, views, warm pools and
HTTP metrics; ``/metrics``' cluster-wide figures, ``pipeline.observability``, are the same
in every process) that binds the port with ``SO_REUSEPORT`` once it has started: the
kernel spreads new connections over those listening, so a process that dies or restarts
takes no connection it cannot answer, and the others keep the port answering.

What they share, they share through Kafka (the registry, webhook deliveries) or through
files: the results index has one writer, whichever process holds its lock
(``pipeline.index.service``); the others read the same SQLite file.

The parent serves nothing: it checks that the port is free, starts the children, starts
again one that exits (after ``RESTART_DELAY_S``), and on SIGTERM or SIGINT stops them all.
A child dies with its parent (``PR_SET_PDEATHSIG``), so no orphan keeps the port.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from types import FrameType

from pipeline.settings import Settings

log = logging.getLogger(__name__)

RESTART_DELAY_S = 1.0
POLL_S = 0.2
STOP_GRACE_S = 15.0  # more than uvicorn's graceful shutdown (server.GRACEFUL_SHUTDOWN_S)
PR_SET_PDEATHSIG = 1


class PortTaken(Exception):
    pass


def check_port_free(settings: Settings) -> None:
    """Refuse to start beside another server on the port: a plain bind fails while any
    socket listens there, shared or not (``SO_REUSEPORT`` would silently share it)."""
    family = socket.AF_INET6 if ":" in settings.gateway.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.gateway.host, settings.gateway.port))
        except OSError as exc:
            raise PortTaken(f"{settings.gateway.url()} is taken: {exc}") from exc


class Processes:
    """The parent of ``settings.gateway.process_count()`` gateway processes."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._count = settings.gateway.process_count()
        self._children: list[subprocess.Popen[bytes] | None] = [None] * self._count
        self._stopping = False

    def run(self) -> None:
        check_port_free(self._settings)
        self._settings.auth_token(create=True)  # made once here, not raced by the children
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)
        log.info("gateway: %d processes on %s", self._count, self._settings.gateway.url())
        restart_at = [0.0] * self._count
        while not self._stopping:
            now = time.monotonic()
            for slot, child in enumerate(self._children):
                if child is not None and child.poll() is not None:
                    log.warning("gateway process %d exited (%s); starting another",
                                child.pid, child.returncode)
                    self._children[slot] = None
                    restart_at[slot] = now + RESTART_DELAY_S
                if self._children[slot] is None and now >= restart_at[slot]:
                    self._children[slot] = self._spawn()
            time.sleep(POLL_S)
        self._stop_children()

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "pipeline.gateway.processes"],
                                preexec_fn=die_with_parent)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _stop_children(self) -> None:
        running = [c for c in self._children if c is not None and c.poll() is None]
        for child in running:
            child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for child in running:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def die_with_parent() -> None:
    """In the child, before it runs: SIGTERM when the parent dies, however it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def child_main() -> None:
    """One of the processes: a whole gateway sharing the port."""
    from pipeline.cli.main import configure_logging
    from pipeline.gateway.server import serve_one

    settings = Settings()
    configure_logging(settings)
    if os.getppid() == 1:  # the parent died before the death signal was armed
        return
    serve_one(settings, shared_port=True)


if __name__ == "__main__":
    child_main()
