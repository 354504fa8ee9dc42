"""The gateway's HTTP server: uvicorn with ``GuardedH11Protocol`` (request heads and
bodies that must keep up, a bound on open connections) and as many file descriptors as
the process may have."""

from __future__ import annotations

import logging
import resource

import uvicorn

from pipeline.gateway.app import create_app
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
    """Run one gateway until SIGINT or SIGTERM."""
    bounds = limits(settings, raise_descriptor_limit())
    log.info("at most %d connections (backlog %d); request heads within %g s, bodies at "
             "%d bytes/s after %g s", bounds.max_connections, bounds.backlog,
             bounds.header_timeout_s, bounds.body_min_rate, bounds.body_grace_s)
    app = create_app(settings)
    closed = app.state.metrics.connections_closed
    config = uvicorn.Config(
        app, host=settings.gateway.host, port=settings.gateway.port,
        http=protocol_for(bounds, lambda reason: closed.labels(reason).inc()),
        backlog=bounds.backlog, access_log=False, log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    uvicorn.Server(config).run()
