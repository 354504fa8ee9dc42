"""The platform image's HEALTHCHECK. The role (the entrypoint's first argument, read from PID 1's
command line) decides what is asked: the gateway's /healthz must answer 200 (503 while its Kafka
views fail); the broker's controller port must accept a connection; other roles have no port to
ask, and pass. Standard library only: it runs every few seconds.

Not the broker's client port: a cluster member opens it only once the quorum has formed, and
Swarm replaces an unhealthy task, so members waiting for their peers were killed in turn and the
cluster never formed. The controller listener is open from the start (on 127.0.0.1 too)."""

from __future__ import annotations

import os
import socket
import sys
import urllib.request
from pathlib import Path

ENTRYPOINT = b"/opt/faasflow/entrypoint.sh"


def role() -> str | None:
    args = Path("/proc/1/cmdline").read_bytes().split(b"\0")
    if ENTRYPOINT in args[:-1]:
        return args[args.index(ENTRYPOINT) + 1].decode()
    return None


def healthy() -> bool:
    match role():
        case "gateway":
            port = os.environ.get("FAASFLOW_GATEWAY_PORT", "8080")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=4) as r:
                    return bool(r.status == 200)
            except OSError:  # URLError and HTTPError (the 503) are OSErrors
                return False
        case "broker":
            port = os.environ.get("KAFKA_CONTROLLER_PORT", "9093")
            try:
                socket.create_connection(("127.0.0.1", int(port)), timeout=4).close()
            except OSError:
                return False
            return True
        case _:
            return True


if __name__ == "__main__":
    sys.exit(0 if healthy() else 1)
