"""The gateway's HTTP server: uvicorn on uvloop with ``GuardedProtocol`` (httptools;
request heads and bodies that must keep up, a bound on open connections) and as many file
descriptors as the process may have; one process, or several sharing the port
(``pipeline.gateway.processes``)."""

from __future__ import annotations

import logging
import resource
import socket

import uvicorn

from pipeline.gateway.connections import Limits, protocol_for
from pipeline.settings import Settings

log = logging.getLogger(__name__)

RESERVED_DESCRIPTORS = 256  # Kafka, the Docker Engine, warm containers' sockets, logs
MAX_BACKLOG = 256  # connections the kernel queues; asyncio accepts up to this many in a turn
# asyncio hands an accepted socket to the protocol (which may evict one) two loop turns
# later, and closes an evicted one a turn after that: up to this many backlogs in flight.
BURST_BACKLOGS = 4
UNLIMITED_DESCRIPTORS = 65536  # the soft limit asked for when the hard one is unlimited
GRACEFUL_SHUTDOWN_S = 10


def raise_descriptor_limit() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit (many systems start processes
    at 1024); returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = UNLIMITED_DESCRIPTORS if hard == resource.RLIM_INFINITY else hard
    if wanted > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as exc:
            log.warning("file descriptor limit stays %d: %s", soft, exc)
    return soft


def limits(settings: Settings, descriptors: int) -> Limits:
    """The connection limits for a process with ``descriptors`` file descriptors. The
    bound and the backlog leave room for a burst of accepts and for what the gateway opens
    besides, so that accepting never fails for want of a descriptor (asyncio would then
    stop accepting for a second, and Kafka or Docker could not reconnect)."""
    gateway = settings.gateway
    spare = max(2, descriptors - RESERVED_DESCRIPTORS)
    backlog = max(1, min(MAX_BACKLOG, spare // (2 * BURST_BACKLOGS)))
    return Limits(
        header_timeout_s=gateway.header_timeout_s,
        body_min_rate=gateway.body_min_rate,
        body_grace_s=gateway.body_grace_s,
        max_connections=min(gateway.max_connections, spare - BURST_BACKLOGS * backlog),
        backlog=backlog,
    )


def serve(settings: Settings) -> None:
    """Run the gateway until SIGINT or SIGTERM: in this process, or in
    ``settings.gateway.process_count()`` processes sharing its port."""
    if settings.gateway.process_count() == 1:
        serve_one(settings)
        return
    from pipeline.gateway.processes import Processes

    Processes(settings).run()


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``port`` with ``SO_REUSEPORT``, not yet listening: it joins the
    port's group (the kernel spreads connections over the group) when uvicorn listens on
    it, once the application has started."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def serve_one(settings: Settings, *, shared_port: bool = False) -> None:
    """Run one gateway process until SIGINT or SIGTERM; with ``shared_port``, one of the
    processes sharing the port."""
    from pipeline.gateway.app import create_app  # not for a parent of gateway processes

    bounds = limits(settings, raise_descriptor_limit())
    log.info("at most %d connections (backlog %d); request heads within %g s, bodies at "
             "%d bytes/s after %g s", bounds.max_connections, bounds.backlog,
             bounds.header_timeout_s, bounds.body_min_rate, bounds.body_grace_s)
    app = create_app(settings)
    closed = app.state.metrics.connections_closed
    config = uvicorn.Config(
        app, host=settings.gateway.host, port=settings.gateway.port, loop="uvloop",
        http=protocol_for(bounds, lambda reason: closed.labels(reason).inc()),
        backlog=bounds.backlog, access_log=False, log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    gateway = settings.gateway
    sockets = [reuse_port_socket(gateway.host, gateway.port)] if shared_port else None
    uvicorn.Server(config).run(sockets=sockets)
